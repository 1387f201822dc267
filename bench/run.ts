/**
 * `npm run bench [-- name ...]`: runs each suite in a child process of its
 * own (so each peak RSS figure is that suite's) and prints their lines.
 * `--in-process <name>` is how the parent starts a child.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createReporter } from './harness.ts';
import { loadSuites } from './suites.ts';

const args = process.argv.slice(2);
const scale = Number(process.env.BENCH_SCALE ?? '1');

async function runInProcess(name: string): Promise<void> {
  const suite = (await loadSuites()).find((s) => s.name === name);
  if (!suite) throw new Error(`no benchmark suite named ${name}`);
  const tmpDir = await mkdtemp(join(tmpdir(), `millstream-bench-${name}-`));
  const report = createReporter(suite.name, (line) => process.stdout.write(`${line}\n`));
  try {
    await suite.run(report, { scale, tmpDir });
    report.figure('peak RSS', report.peakRssMb(), 'MB');
  } finally {
    await rm(tmpDir, { recursive: true, force: true });
  }
}

async function runAll(names: string[]): Promise<number> {
  const suites = await loadSuites();
  const chosen = names.length ? suites.filter((s) => names.includes(s.name)) : suites;
  const unknown = names.filter((n) => !suites.some((s) => s.name === n));
  if (unknown.length) {
    process.stderr.write(`unknown suite(s): ${unknown.join(', ')}; known: ${suites.map((s) => s.name).join(', ')}\n`);
    return 2;
  }
  const bin = fileURLToPath(new URL('../bin/bench.js', import.meta.url));
  let failed = 0;
  for (const suite of chosen) {
    process.stdout.write(`== ${suite.name}: ${suite.description}\n`);
    const code = await new Promise<number>((resolve) => {
      const child = spawn(process.execPath, ['--expose-gc', bin, '--in-process', suite.name], { stdio: 'inherit' });
      child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0)));
    });
    if (code !== 0) {
      failed++;
      process.stdout.write(`== ${suite.name}: exited with ${code}\n`);
    }
  }
  return failed ? 1 : 0;
}

if (args[0] === '--in-process' && args[1]) {
  await runInProcess(args[1]);
} else {
  process.exitCode = await runAll(args);
}
