import { buildKafkaMockLauncher } from './kafka-mock-build.ts';

/**
 * Vitest global setup: one-time work shared by test files.
 * - Compiles the Kafka mock launcher (test/support/build/, gitignored). A
 *   failed build does not stop the suite here; every test that needs the
 *   Kafka peer fails with the reason (see kafka-mock-build.ts).
 */
export default async function setup(): Promise<void> {
  const built = await buildKafkaMockLauncher();
  if (!built.ok) process.stderr.write(`global-setup: ${built.error}\n`);
}
