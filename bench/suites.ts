import type { BenchSuite } from './harness.ts';

/** Every benchmark suite, in run order. Add a suite with one import and one entry. */
export async function loadSuites(): Promise<BenchSuite[]> {
  const modules: Array<Promise<{ default: BenchSuite }>> = [
    import('./log-store.bench.ts'),
    import('./rules.bench.ts'),
    import('./bridge.bench.ts'),
    import('./mqtt.bench.ts'),
    import('./replicator.bench.ts'),
  ];
  return (await Promise.all(modules)).map((m) => m.default);
}
