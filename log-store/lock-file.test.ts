import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { nodeFileSystem } from './file-system.ts';
import { acquireLock } from './lock-file.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function dir(): string {
  const d = mkdtempSync(join(tmpdir(), 'millstream-lock-'));
  dirs.push(d);
  return d;
}

describe('lock file', () => {
  it('holds pid and start time; a second taker in the same incarnation is refused; release removes it', async () => {
    const d = dir();
    const lock = await acquireLock(nodeFileSystem, d, 4242, 1000, () => true);
    expect(readFileSync(join(d, '.lock'), 'utf8')).toBe('4242 1000\n');
    await expect(acquireLock(nodeFileSystem, d, 4242, 1000, () => true)).rejects.toMatchObject({ code: 'LOG_LOCKED', context: { pid: 4242 } });
    await lock.release();
    expect(existsSync(join(d, '.lock'))).toBe(false);
  });

  it('takes over the lock of a dead pid, or of an earlier incarnation that had our pid', async () => {
    const d = dir();
    writeFileSync(join(d, '.lock'), '777 5\n');
    await expect(acquireLock(nodeFileSystem, d, 1, 9, (pid) => pid === 777)).rejects.toMatchObject({ code: 'LOG_LOCKED', context: { pid: 777 } });
    const taken = await acquireLock(nodeFileSystem, d, 1, 9, () => false);
    expect(readFileSync(join(d, '.lock'), 'utf8')).toBe('1 9\n');
    await taken.release();
    // A restarted container's pid 1 finds its own pid from a previous start.
    writeFileSync(join(d, '.lock'), '1 5\n');
    await acquireLock(nodeFileSystem, d, 1, 9, () => true);
    expect(readFileSync(join(d, '.lock'), 'utf8')).toBe('1 9\n');
  });
});
