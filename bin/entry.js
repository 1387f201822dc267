// Picks how a command runs: the compiled JavaScript in dist/ (`npm run
// build`; no loader thread, about 45 MB less resident memory) when it is
// there and no source is newer than it, else the TypeScript sources through
// tsx (a production install without TypeScript, or a developer who edited a
// file since the last build: they get one line saying so).
// MILLSTREAM_FROM_SOURCE=1 forces the sources.
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
/** Folders compiled to dist/ (tsconfig.build.json includes the same). */
export const SOURCE_DIRS = ['log-store', 'rules', 'firmware-bridge', 'agent', 'bench', 'test/support'];
/** Written into dist/ when a build completed. */
export const BUILT_STAMP = '.built';

function mtimeMs(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

/** The newest modification time of a TypeScript source (not tests). */
function newestSourceMs(root) {
  let newest = 0;
  for (const dir of SOURCE_DIRS) {
    let entries;
    try {
      entries = readdirSync(join(root, dir), { recursive: true, withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      if (!e.isFile() || !e.name.endsWith('.ts') || e.name.endsWith('.test.ts')) continue;
      const m = mtimeMs(join(e.parentPath ?? e.path, e.name));
      if (m !== undefined && m > newest) newest = m;
    }
  }
  return newest;
}

/** 'dist' when `root`/dist/ is built and current, else 'source' (with `stale` when dist/ is older than a source). */
export function pickRuntime(root = ROOT, env = process.env) {
  if (env.MILLSTREAM_FROM_SOURCE === '1') return { kind: 'source' };
  const built = mtimeMs(join(root, 'dist', BUILT_STAMP));
  if (built === undefined) return { kind: 'source' };
  if (newestSourceMs(root) > built) return { kind: 'source', stale: true };
  return { kind: 'dist' };
}

/** Imports `relTs` (e.g. 'agent/cli.ts') from dist/ or, through tsx, from the sources. */
export async function runEntry(relTs) {
  const runtime = pickRuntime();
  if (runtime.kind === 'dist') {
    process.setSourceMapsEnabled(true);
    await import(pathToFileURL(join(ROOT, 'dist', relTs.replace(/\.ts$/, '.js'))).href);
    return;
  }
  if (runtime.stale) process.stderr.write('millstream: a source file is newer than dist/; running the sources through tsx (npm run build to refresh)\n');
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(join(ROOT, relTs)).href);
}
