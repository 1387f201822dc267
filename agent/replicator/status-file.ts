/**
 * The replicator's status snapshot on disk, so `millstream replicate status`
 * (another process) can show states and errors, not only positions.
 *
 * File format: one JSON object, `{ "writtenAt": <ms>, "status": ReplicatorStatus }`,
 * replaced atomically (write `<file>.tmp`, rename). Derived data: losing it
 * loses nothing but the last error texts; positions live in the log store.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import type { ReplicatorStatus } from './status.ts';

export interface StatusSnapshot {
  writtenAt: number;
  status: ReplicatorStatus;
}

export async function writeStatusFile(path: string, status: ReplicatorStatus, now: number): Promise<void> {
  const tmp = `${path}.tmp`;
  await writeFile(tmp, `${JSON.stringify({ writtenAt: now, status } satisfies StatusSnapshot)}\n`);
  await rename(tmp, path);
}

/** The snapshot, or undefined when the file does not exist. Throws on a file that is not a snapshot. */
export async function readStatusFile(path: string): Promise<StatusSnapshot | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const parsed = JSON.parse(text) as StatusSnapshot;
  if (typeof parsed?.writtenAt !== 'number' || !Array.isArray(parsed?.status?.topics)) throw new Error(`${path} is not a replicator status file`);
  return parsed;
}
