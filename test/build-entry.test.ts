/**
 * How the command runs: `npm run build` compiles to dist/, and bin/entry.js
 * runs dist/ only while it is current (no TypeScript source newer than
 * dist/.built); otherwise the sources through tsx. Checked on temporary
 * trees with chosen modification times, on the repository itself (the
 * suite's global setup builds it), and on a tree laid out by install.sh.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { BUILT_STAMP, ROOT, pickRuntime } from '../bin/entry.js';

const run = promisify(execFile);
const roots: string[] = [];

afterAll(async () => {
  await Promise.all(roots.map((r) => rm(r, { recursive: true, force: true })));
});

async function tree(files: Record<string, number>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'millstream-entry-'));
  roots.push(root);
  for (const [rel, seconds] of Object.entries(files)) {
    await mkdir(join(root, rel, '..'), { recursive: true });
    await writeFile(join(root, rel), '');
    await utimes(join(root, rel), seconds, seconds);
  }
  return root;
}

describe('bin/entry.js pickRuntime', () => {
  it('runs dist/ when it was built after every source', async () => {
    const root = await tree({ 'agent/cli.ts': 1000, 'rules/parser.ts': 1500, [`dist/${BUILT_STAMP}`]: 2000 });
    expect(pickRuntime(root, {})).toEqual({ kind: 'dist' });
  });

  it('runs the sources, saying dist/ is stale, when any source is newer than the build', async () => {
    const root = await tree({ 'agent/cli.ts': 1000, 'log-store/segment.ts': 3000, [`dist/${BUILT_STAMP}`]: 2000 });
    expect(pickRuntime(root, {})).toEqual({ kind: 'source', stale: true });
  });

  it('ignores tests and non-TypeScript files when judging staleness', async () => {
    const root = await tree({ 'agent/cli.ts': 1000, 'agent/cli.test.ts': 3000, 'agent/status-page.html': 3000, [`dist/${BUILT_STAMP}`]: 2000 });
    expect(pickRuntime(root, {})).toEqual({ kind: 'dist' });
  });

  it('runs the sources when nothing was built, or when MILLSTREAM_FROM_SOURCE=1', async () => {
    const unbuilt = await tree({ 'agent/cli.ts': 1000 });
    expect(pickRuntime(unbuilt, {})).toEqual({ kind: 'source' });
    const built = await tree({ 'agent/cli.ts': 1000, [`dist/${BUILT_STAMP}`]: 2000 });
    expect(pickRuntime(built, { MILLSTREAM_FROM_SOURCE: '1' })).toEqual({ kind: 'source' });
  });

  it('finds this repository built and current (the global setup ran npm run build)', () => {
    expect(pickRuntime(ROOT, {})).toEqual({ kind: 'dist' });
    expect(existsSync(join(ROOT, 'dist/agent/cli.js'))).toBe(true);
  });
});

describe('the compiled agent', () => {
  it('runs as plain JavaScript from dist/, or from the sources when asked', async () => {
    const bin = join(ROOT, 'bin/millstream.js');
    expect((await run(process.execPath, [bin, '--version'])).stdout).toBe('0.1.0 (compiled, dist/)\n');
    const fromSource = await run(process.execPath, [bin, '--version'], { env: { ...process.env, MILLSTREAM_FROM_SOURCE: '1' } });
    expect(fromSource.stdout).toBe('0.1.0 (sources through tsx)\n');
  });

  it('is what install.sh installs, current after the copy', async () => {
    const root = await mkdtemp(join(tmpdir(), 'millstream-install-dist-'));
    roots.push(root);
    await run('bash', [join(ROOT, 'systemd/install.sh'), '--root', root, '--no-deps', '--no-systemctl']);
    const app = join(root, 'opt/millstream');
    expect(existsSync(join(app, 'dist/agent/cli.js'))).toBe(true);
    expect(existsSync(join(app, 'dist/test'))).toBe(false);
    expect(pickRuntime(app, {})).toEqual({ kind: 'dist' });
  });
});
