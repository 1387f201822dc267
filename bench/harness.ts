/**
 * The benchmark harness. A suite measures a figure and, where the issue asks
 * for one, a baseline run beside it in the same process, and reports both:
 * machines are shared and noisy, so absolute numbers vary while ratios
 * measured in one run hold. Benchmarks are never tests: nothing here fails a
 * build, it prints.
 *
 * A suite is a module `bench/<name>.bench.ts` whose default export is a
 * `BenchSuite`; add it to `bench/suites.ts`. `npm run bench` runs every suite
 * in its own child process (so peak RSS is the suite's own); `npm run bench --
 * log-store` runs the named ones; `BENCH_SCALE=0.1` shrinks the work.
 */
import { spawn } from 'node:child_process';

export interface BenchTarget {
  /** The figure must be at least this (same unit as the figure). */
  min?: number;
  /** The figure must be at most this (e.g. peak RSS in MB). */
  max?: number;
  /** value / baseline must be at least this. */
  minRatio?: number;
}

export interface BenchReporter {
  /** Prints `<suite> <name>: <value> <unit>` and, with a target, whether it is met. */
  figure(name: string, value: number, unit: string, target?: BenchTarget): void;
  /** Prints the figure, its baseline and the ratio figure / baseline. */
  compare(name: string, value: number, baseline: number, unit: string, target?: BenchTarget): void;
  /** Prints a free-form note line (set-up, sizes). */
  note(text: string): void;
  /** Peak resident set size of this process so far, in MB. */
  peakRssMb(): number;
}

export interface BenchContext {
  /** Multiply record counts by this (BENCH_SCALE, default 1). */
  scale: number;
  /** A fresh temporary directory for this suite, removed afterwards. */
  tmpDir: string;
}

export interface BenchSuite {
  name: string;
  description: string;
  run(report: BenchReporter, ctx: BenchContext): Promise<void>;
}

function fmt(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

function verdict(value: number, ratio: number | undefined, target?: BenchTarget): string {
  if (!target) return '';
  const parts: string[] = [];
  let ok = true;
  if (target.min !== undefined) {
    parts.push(`≥ ${fmt(target.min)}`);
    ok &&= value >= target.min;
  }
  if (target.max !== undefined) {
    parts.push(`≤ ${fmt(target.max)}`);
    ok &&= value <= target.max;
  }
  if (target.minRatio !== undefined && ratio !== undefined) {
    parts.push(`ratio ≥ ${target.minRatio}`);
    ok &&= ratio >= target.minRatio;
  }
  return `  [target ${parts.join(', ')}: ${ok ? 'met' : 'MISSED'}]`;
}

export function createReporter(suite: string, write: (line: string) => void): BenchReporter {
  return {
    figure(name, value, unit, target) {
      write(`${suite} ${name}: ${fmt(value)} ${unit}${verdict(value, undefined, target)}`);
    },
    compare(name, value, baseline, unit, target) {
      const ratio = baseline === 0 ? Number.NaN : value / baseline;
      write(
        `${suite} ${name}: ${fmt(value)} ${unit} | baseline ${fmt(baseline)} ${unit} | ratio ${ratio.toFixed(2)}${verdict(value, ratio, target)}`,
      );
    },
    note(text) {
      write(`${suite} # ${text}`);
    },
    peakRssMb() {
      return process.resourceUsage().maxRSS / 1024;
    },
  };
}

/**
 * Runs `file` (a bench module, `import.meta.url` of the caller) in a child
 * process as `node file flag <args as JSON>` and resolves with the JSON the
 * child printed as its last stdout line. The child runs plain node when the
 * bench runs compiled (npm run bench builds dist/), as the agent does, and
 * through tsx from the sources. `BENCH_CHILD_NODE_ARGS` adds node flags
 * (e.g. `--cpu-prof`) for profiling.
 */
export function runBenchChild<T>(file: string, flag: string, args: unknown, env: NodeJS.ProcessEnv = process.env): Promise<T> {
  const loader = file.endsWith('.js') ? [] : ['--import', 'tsx'];
  const nodeArgs = process.env.BENCH_CHILD_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, ...loader, file, flag, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'inherit'], env });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.once('exit', (code) => {
      const line = out.trim().split('\n').at(-1) ?? '';
      if (code === 0 && line.startsWith('{')) resolve(JSON.parse(line) as T);
      else reject(new Error(`bench child ${flag} exited with ${code}: ${out}`));
    });
  });
}
