/**
 * Builds the Kafka mock launcher (kafka-mock-launcher.c) with gcc into
 * test/support/build/ (gitignored). Run once by the vitest global setup and
 * by the replicator benchmark. A failed build is written beside the binary
 * so every test that needs the peer fails with the reason instead of
 * passing silently.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const source = join(here, 'kafka-mock-launcher.c');
/** Where the launcher binary lands. */
export const launcherPath = join(here, 'build', 'kafka-mock-launcher');
const errorPath = `${launcherPath}.error`;

/** Compiles the launcher unless an up-to-date binary exists. Never throws: a failure is recorded for `requireLauncher`. */
export async function buildKafkaMockLauncher(): Promise<{ ok: boolean; error?: string }> {
  await mkdir(dirname(launcherPath), { recursive: true });
  if (existsSync(launcherPath) && statSync(launcherPath).mtimeMs >= statSync(source).mtimeMs) {
    await rm(errorPath, { force: true });
    return { ok: true };
  }
  try {
    await promisify(execFile)('gcc', ['-O2', '-Wall', '-o', launcherPath, source, '-lrdkafka'], { timeout: 120_000 });
    await rm(errorPath, { force: true });
    return { ok: true };
  } catch (err) {
    const e = err as Error & { stderr?: string };
    const error = `gcc could not build ${source}: ${(e.stderr || e.message).trim()}`;
    await writeFile(errorPath, error);
    return { ok: false, error };
  }
}

/** The launcher's path; throws a clear error when it was not built (librdkafka-dev or gcc missing). */
export function requireLauncher(): string {
  if (existsSync(launcherPath)) return launcherPath;
  const reason = existsSync(errorPath) ? readFileSync(errorPath, 'utf8') : 'the vitest global setup did not run';
  throw new Error(
    `Kafka mock launcher is not built (${reason}). It needs gcc and librdkafka-dev 2.x (rdkafka_mock.h); .ci/run installs them: apt-get install librdkafka-dev gcc libc6-dev`,
  );
}
