/**
 * The data directory's lock file (`<dataDir>/.lock`): one process owns a
 * data directory at a time. The file is created with O_EXCL and holds
 * `<pid> <process start time>\n`. A second opener gets LOG_LOCKED naming
 * the pid and file. A lock left by a process that no longer exists
 * (SIGKILL, power loss) is taken over. An empty or unreadable lock file
 * (crash between create and write) counts as stale. A lock with our own pid
 * but another start time is a previous incarnation that got the same pid
 * (a restarted container's pid 1): stale too.
 *
 * Caveat: liveness of another pid is `kill(pid, 0)`; if a reboot gave the
 * pid to an unrelated process, the operator removes the file.
 */
import { readFileSync } from 'node:fs';
import { LogError, fromFsError } from './errors.ts';
import type { LogFileSystem } from './file-system.ts';

export const LOCK_FILE = '.lock';

/** True when a process with this pid exists (EPERM: exists, owned by someone else). */
export type PidAlive = (pid: number) => boolean;

export const defaultPidAlive: PidAlive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

export interface HeldLock {
  release(): Promise<void>;
}

/**
 * Identifies this incarnation of our pid, the same in every thread of the
 * process: on Linux the start time in clock ticks since boot
 * (/proc/self/stat field 22), elsewhere the main thread's time origin.
 */
export const processStartToken = (): number => {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const start = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    if (Number.isSafeInteger(start)) return start;
  } catch {
    // Not Linux: fall through.
  }
  return Math.round(performance.timeOrigin);
};

export async function acquireLock(
  fs: LogFileSystem,
  dataDir: string,
  pid: number,
  startToken: number = processStartToken(),
  pidAlive: PidAlive = defaultPidAlive,
): Promise<HeldLock> {
  const path = `${dataDir}/${LOCK_FILE}`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await fs.open(path, 'createExclusive');
      try {
        const body = Buffer.from(`${pid} ${startToken}\n`);
        await fh.write(body, 0, body.length, 0);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fs.fsyncDir(dataDir);
      let released = false;
      return {
        async release() {
          if (released) return;
          released = true;
          await fs.unlink(path).catch(() => {});
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fromFsError(err, 'create lock file', { file: path });
    }
    let owner = NaN;
    let ownerStart = NaN;
    try {
      const [p, t] = (await fs.readFile(path)).toString('utf8').trim().split(/\s+/);
      owner = Number.parseInt(p ?? '', 10);
      ownerStart = Number.parseInt(t ?? '', 10);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
    }
    const live = owner === pid ? !Number.isInteger(ownerStart) || ownerStart === startToken : pidAlive(owner);
    if (Number.isInteger(owner) && owner > 0 && live) {
      throw new LogError('LOG_LOCKED', `data directory ${dataDir} is in use by process ${owner} (lock file ${path})`, { file: path, pid: owner });
    }
    // Stale: the owner is gone. Remove and retry the exclusive create.
    await fs.unlink(path).catch(() => {});
  }
  throw new LogError('LOG_LOCKED', `could not take the lock file ${path}`, { file: path });
}
