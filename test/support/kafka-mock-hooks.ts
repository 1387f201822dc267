/**
 * Test support: the Kafka peer's lifecycle for a describe block (or a file):
 * started before its tests, stopped after them, and after each test (once
 * the test file's own afterEach cleanup ran: vitest runs after-hooks in
 * reverse order) the shim must have recorded no error.
 *
 *   let kafka: KafkaMock;
 *   useKafkaMock({ brokers: 3 }, (k) => (kafka = k));
 *
 * Kept apart from kafka-mock.ts, which the benchmarks import without vitest.
 */
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { startKafkaMock } from './kafka-mock.ts';
import type { KafkaMock } from './kafka-mock.ts';

export function useKafkaMock(options: Parameters<typeof startKafkaMock>[0], started: (kafka: KafkaMock) => void): void {
  let kafka: KafkaMock | undefined;
  beforeAll(async () => {
    kafka = await startKafkaMock(options);
    started(kafka);
  });
  afterAll(async () => {
    await kafka?.stop();
  });
  afterEach(() => {
    expect(kafka?.shim.errors).toEqual([]);
  });
}
