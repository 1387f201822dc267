/**
 * Test support: run the real `millstream` command (`node bin/millstream.js`)
 * in child processes, exactly as an operator would. Each test file makes one
 * runner with `createCliRunner()` and calls `killAll()` in afterEach, so no
 * child outlives its test.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Absolute path of the command's entry point. */
export const MILLSTREAM_BIN = fileURLToPath(new URL('../../bin/millstream.js', import.meta.url));

export interface CliResult {
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliRunOptions {
  /** Written to stdin, which is then closed. Default: stdin closed at once. */
  input?: string | Buffer;
  cwd?: string;
}

export interface CliRunner {
  /** Runs `millstream ...args` to completion. */
  run(args: readonly string[], options?: CliRunOptions): Promise<CliResult>;
  /** Starts `millstream ...args` with piped stdio; the caller drives stdin and reads stdout. */
  spawn(args: readonly string[], options?: { cwd?: string }): ChildProcessWithoutNullStreams;
  /** SIGKILLs every child still running and waits for them to be gone. */
  killAll(): Promise<void>;
}

export function createCliRunner(): CliRunner {
  const live = new Set<ChildProcessWithoutNullStreams>();

  const start = (args: readonly string[], cwd?: string): ChildProcessWithoutNullStreams => {
    const child = spawn(process.execPath, [MILLSTREAM_BIN, ...args], {
      cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    });
    live.add(child);
    child.once('exit', () => live.delete(child));
    // A child killed mid-write makes our end of stdin fail with EPIPE; that is expected.
    child.stdin.on('error', () => {});
    return child;
  };

  return {
    spawn: (args, options = {}) => start(args, options.cwd),

    run(args, options = {}) {
      const child = start(args, options.cwd);
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.stdin.end(options.input ?? '');
      return new Promise((resolve, reject) => {
        child.once('error', reject);
        child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
      });
    },

    async killAll() {
      const waits = [...live].map(async (child) => {
        if (child.exitCode === null && child.signalCode === null) {
          const gone = new Promise((resolve) => child.once('exit', resolve));
          child.kill('SIGKILL');
          await gone;
        }
      });
      await Promise.all(waits);
      live.clear();
    },
  };
}

/** Parses `tail`'s output: one JSON object per line. */
export function parseJsonLines<T = unknown>(text: string): T[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as T);
}

/** Lines of a child's output as they arrive. */
export interface LineCollector {
  readonly lines: string[];
  /** Resolves once `predicate(lines)` holds; rejects if the stream ends first. */
  until(predicate: (lines: readonly string[]) => boolean): Promise<void>;
}

export function collectLines(stream: NodeJS.ReadableStream): LineCollector {
  const lines: string[] = [];
  const checks = new Set<() => void>();
  let partial = '';
  let ended = false;
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    for (const check of [...checks]) check();
  });
  stream.on('end', () => {
    ended = true;
    if (partial) lines.push(partial);
    partial = '';
    for (const check of [...checks]) check();
  });
  return {
    lines,
    until(predicate) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (predicate(lines)) {
            checks.delete(check);
            resolve();
          } else if (ended) {
            checks.delete(check);
            reject(new Error(`output ended before the expected lines; got:\n${lines.slice(-20).join('\n')}`));
          }
        };
        checks.add(check);
        check();
      });
    },
  };
}
