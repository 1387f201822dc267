import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { buildKafkaMockLauncher } from './kafka-mock-build.ts';

/**
 * Vitest global setup: one-time work shared by test files.
 * - Builds dist/ (`npm run build`), so the tests that spawn `millstream`
 *   run the compiled agent, as a production install does. A failed build
 *   leaves dist/ unmarked and those tests run the sources through tsx.
 * - Compiles the Kafka mock launcher (test/support/build/, gitignored). A
 *   failed build does not stop the suite here; every test that needs the
 *   Kafka peer fails with the reason (see kafka-mock-build.ts).
 */
export default async function setup(): Promise<void> {
  const build = spawnSync(process.execPath, [fileURLToPath(new URL('../../bin/build.js', import.meta.url)), '--quiet'], { encoding: 'utf8' });
  if (build.status !== 0) process.stderr.write(`global-setup: npm run build failed:\n${build.stdout}${build.stderr}\n`);
  const built = await buildKafkaMockLauncher();
  if (!built.ok) process.stderr.write(`global-setup: ${built.error}\n`);
}
