/** Types of entry.js (plain JavaScript: it runs before any TypeScript loader). */
export declare const ROOT: string;
export declare const SOURCE_DIRS: readonly string[];
export declare const BUILT_STAMP: string;
export interface Runtime {
  kind: 'dist' | 'source';
  /** Set when dist/ exists but a source file is newer than it. */
  stale?: boolean;
}
export declare function pickRuntime(root?: string, env?: NodeJS.ProcessEnv): Runtime;
export declare function runEntry(relTs: string): Promise<void>;
