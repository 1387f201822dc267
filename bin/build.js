#!/usr/bin/env node
// `npm run build` (also run by `npm ci` through `prepare`, by the test
// suite's global setup and by `npm run bench`): compiles the TypeScript
// sources to dist/ with tsc (transpile only: `npm run typecheck` checks
// types), so the agent runs as plain JavaScript on Node 20 with no loader
// thread. Files that are not TypeScript (the status page, the Kafka mock
// launcher's C source, certificates, ...) and the folders code reaches by
// relative path (bin/, systemd/) are symlinked into dist/, so relative URLs
// resolve the same in dist/ as in the source tree. dist/.built is written
// last: bin/entry.js runs dist/ only when it exists and no source is newer.
//
// Without TypeScript installed (`npm ci --omit=dev`) it builds nothing and
// exits 0: the command then runs the sources through tsx.
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { BUILT_STAMP, SOURCE_DIRS, ROOT } from './entry.js';

const DIST = join(ROOT, 'dist');
const LINKED_DIRS = ['bin', 'systemd', 'docs'];

let tsc;
try {
  tsc = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');
} catch {
  process.stderr.write('build: typescript is not installed (production install); millstream runs from the sources through tsx\n');
  process.exit(0);
}

rmSync(join(DIST, BUILT_STAMP), { force: true });
const result = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit' });
if (result.status !== 0) {
  process.stderr.write(`build: tsc exited with ${result.status ?? result.signal}; dist/ is not marked built, so millstream runs from the sources\n`);
  process.exit(1);
}

/** Symlinks `target` at `link` unless something is already there. */
function link(target, at) {
  try {
    lstatSync(at);
    return;
  } catch {
    mkdirSync(dirname(at), { recursive: true });
    symlinkSync(relative(dirname(at), target), at);
  }
}

for (const dir of SOURCE_DIRS) {
  const src = join(ROOT, dir);
  if (!existsSync(src)) continue;
  for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
    const full = join(entry.parentPath ?? entry.path, entry.name);
    const rel = relative(ROOT, full);
    if (!entry.isFile() || rel.endsWith('.ts') || rel.split('/').includes('build') || rel.split('/').includes('node_modules')) continue;
    link(full, join(DIST, rel));
  }
}
for (const dir of LINKED_DIRS) if (existsSync(join(ROOT, dir))) link(join(ROOT, dir), join(DIST, dir));
writeFileSync(join(DIST, BUILT_STAMP), `${new Date().toISOString()}\n`);
if (!process.argv.includes('--quiet')) process.stderr.write(`build: dist/ is up to date\n`);
