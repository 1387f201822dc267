/**
 * The data directory's lock file (`<dataDir>/.lock`): one process owns a
 * data directory at a time, whatever the timing of concurrent openers.
 *
 * Format: `<pid> <process start time>\n` (a lone `<pid>` from older files is
 * read too). A second opener gets LOG_LOCKED naming the pid and file.
 *
 * Invariants:
 * - **Never observable empty or half-written.** The content is written to a
 *   unique scratch file (`.lock.<id>.tmp`), fsynced, and `link(2)`ed to
 *   `.lock`: the link is atomic and fails with EEXIST when someone holds the
 *   lock. The scratch name is then unlinked.
 * - **Only the takeover holder removes someone else's lock.** A lock is stale
 *   when its pid no longer exists, or when it holds our pid with another
 *   start time (a previous incarnation, e.g. a restarted container's pid 1).
 *   To remove it an opener first creates `.lock.takeover` the same way (temp
 *   + link, holding its own pid and start time), re-reads `.lock` and unlinks
 *   it only if it still holds the exact bytes judged stale, then links its own
 *   lock (which a plain opener may have beaten: then it is LOG_LOCKED like any
 *   other), and finally removes `.lock.takeover` if it is still its own.
 *   Because no one else removes `.lock` while we hold `.lock.takeover`, and
 *   the stale owner is dead, the re-read and the unlink see the same file.
 *   Openers that find a live takeover wait for it (`takeoverWaits` ×
 *   `takeoverWaitMs`) and then look again, so they name the real owner.
 * - **A stale `.lock.takeover`** (its taker died mid-takeover) is renamed to
 *   a unique `.lock.<id>.stale` (atomic: one renamer gets it), re-read, and
 *   unlinked if it still holds the content judged stale; otherwise it is a
 *   fresh takeover file and is linked back.
 * - **Unparsable content** (empty, or torn by a version that wrote the lock
 *   in place) is not trusted to be stale: it is taken over only when its
 *   mtime is at least `unparsableStaleMs` old; a recent one is LOG_LOCKED
 *   naming the file.
 * - **Release** removes `.lock` only if it still holds our bytes.
 * - Scratch files left by a crash (`.lock.<id>.tmp`, `.lock.<id>.stale`)
 *   older than `unparsableStaleMs` are removed by the next owner.
 *
 * Caveats: liveness of another pid is `kill(pid, 0)`; if a reboot gave the
 * pid to an unrelated process, the operator removes the file. A taker that
 * dies while holding `.lock.takeover`, combined with two more openers racing
 * on that stale takeover file at the same instant, could still let two
 * takers proceed (the link-back loses to a third): it takes a crash inside a
 * millisecond window plus a three-way race.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { LogError, fromFsError } from './errors.ts';
import type { LogFileSystem } from './file-system.ts';

export const LOCK_FILE = '.lock';
/** Held by the one opener that may remove a stale `.lock`. */
export const TAKEOVER_FILE = '.lock.takeover';
/** Scratch names: `.lock.<hex id>.tmp` (content before its link), `.lock.<hex id>.stale` (a stale file set aside). */
const SCRATCH_NAME = /^\.lock\.[0-9a-f]+\.(?:tmp|stale)$/;
/** Rounds of create → inspect → take over before giving up (each round normally ends in success or LOG_LOCKED). */
const MAX_ROUNDS = 16;

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

export interface LockOptions {
  /** Wall-clock ms, compared with file mtimes. Default `Date.now`. */
  now?: () => number;
  /** An unparsable lock or takeover file is stale only when its mtime is at least this old, ms. Default 5000. */
  unparsableStaleMs?: number;
  /** Unique hex id for scratch file names. Default 8 random bytes. */
  uniqueId?: () => string;
  /** Waits between looks at a live takeover in progress. Default a `setTimeout` of `ms`. */
  sleep?: (ms: number) => Promise<void>;
  /** Pause between looks at a live takeover, ms. Default 10. */
  takeoverWaitMs?: number;
  /** Looks at a live takeover before LOG_LOCKED naming `.lock.takeover`. Default 500. */
  takeoverWaits?: number;
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

/** What a look at a lock (or takeover) file found. */
type Seen =
  | { kind: 'gone' }
  | { kind: 'live'; pid: number }
  /** Unparsable and younger than `unparsableStaleMs`. */
  | { kind: 'unknown'; ageMs: number }
  | { kind: 'stale'; content: Buffer };

interface Ctx {
  fs: LogFileSystem;
  dataDir: string;
  pid: number;
  startToken: number;
  pidAlive: PidAlive;
  body: Buffer;
  now: () => number;
  unparsableStaleMs: number;
  uniqueId: () => string;
  sleep: (ms: number) => Promise<void>;
  takeoverWaitMs: number;
  takeoverWaits: number;
}

const errnoOf = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | null)?.code;

export async function acquireLock(
  fs: LogFileSystem,
  dataDir: string,
  pid: number,
  startToken: number = processStartToken(),
  pidAlive: PidAlive = defaultPidAlive,
  options: LockOptions = {},
): Promise<HeldLock> {
  const ctx: Ctx = {
    fs,
    dataDir,
    pid,
    startToken,
    pidAlive,
    body: Buffer.from(`${pid} ${startToken}\n`),
    now: options.now ?? Date.now,
    unparsableStaleMs: options.unparsableStaleMs ?? 5000,
    uniqueId: options.uniqueId ?? (() => randomBytes(8).toString('hex')),
    sleep: options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
    takeoverWaitMs: options.takeoverWaitMs ?? 10,
    takeoverWaits: options.takeoverWaits ?? 500,
  };
  const path = `${dataDir}/${LOCK_FILE}`;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    if (await createByLink(ctx, path)) return held(ctx, path);
    const seen = await inspect(ctx, path);
    if (seen.kind === 'gone') continue;
    if (seen.kind === 'live') throw lockedBy(dataDir, path, seen.pid);
    if (seen.kind === 'unknown') {
      throw new LogError(
        'LOG_LOCKED',
        `lock file ${path} is empty or unreadable and ${Math.round(seen.ageMs)} ms old: another process may be writing it; ` +
          `retry, or remove it if no process uses ${dataDir}`,
        { file: path },
      );
    }
    if (await takeOver(ctx, path, seen.content)) return held(ctx, path);
  }
  throw new LogError('LOG_LOCKED', `could not take the lock file ${path}: it kept changing`, { file: path });
}

function lockedBy(dataDir: string, path: string, pid: number): LogError {
  return new LogError('LOG_LOCKED', `data directory ${dataDir} is in use by process ${pid} (lock file ${path})`, { file: path, pid });
}

async function held(ctx: Ctx, path: string): Promise<HeldLock> {
  try {
    await ctx.fs.fsyncDir(ctx.dataDir);
  } catch (err) {
    await removeIfOurs(ctx, path);
    throw fromFsError(err, 'fsync data directory after creating the lock file', { file: ctx.dataDir });
  }
  await sweepScratch(ctx);
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      await removeIfOurs(ctx, path);
    },
  };
}

/**
 * Writes our content to a unique scratch file, fsyncs it and links it to
 * `path`. Returns false when `path` exists (EEXIST). The scratch name is
 * always removed.
 */
async function createByLink(ctx: Ctx, path: string): Promise<boolean> {
  const { fs, body } = ctx;
  const tmp = `${ctx.dataDir}/.lock.${ctx.uniqueId()}.tmp`;
  try {
    const fh = await fs.open(tmp, 'createExclusive');
    try {
      let written = 0;
      while (written < body.length) {
        const n = await fh.write(body, written, body.length - written, written);
        if (n <= 0) throw Object.assign(new Error(`write made no progress on ${tmp}`), { code: 'EIO' });
        written += n;
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.link(tmp, path);
    return true;
  } catch (err) {
    if (errnoOf(err) === 'EEXIST') return false;
    throw fromFsError(err, 'create lock file', { file: path });
  } finally {
    await fs.unlink(tmp).catch(() => {});
  }
}

/** `<pid>` or `<pid> <start>`, else null. */
function parse(content: Buffer): { pid: number; start: number | null } | null {
  const m = /^\s*(\d+)(?:\s+(\d+))?\s*$/.exec(content.toString('utf8'));
  if (!m) return null;
  const pid = Number(m[1]);
  if (!Number.isSafeInteger(pid) || pid <= 0) return null;
  return { pid, start: m[2] === undefined ? null : Number(m[2]) };
}

async function inspect(ctx: Ctx, path: string): Promise<Seen> {
  let content: Buffer;
  try {
    content = await ctx.fs.readFile(path);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return { kind: 'gone' };
    throw fromFsError(err, 'read lock file', { file: path });
  }
  const owner = parse(content);
  if (owner === null) {
    let mtimeMs: number;
    try {
      mtimeMs = (await ctx.fs.stat(path)).mtimeMs;
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return { kind: 'gone' };
      throw fromFsError(err, 'stat lock file', { file: path });
    }
    const ageMs = ctx.now() - mtimeMs;
    return ageMs >= ctx.unparsableStaleMs ? { kind: 'stale', content } : { kind: 'unknown', ageMs };
  }
  // Our own pid: live if it is this incarnation (or we cannot tell), else a previous one.
  const live = owner.pid === ctx.pid ? owner.start === null || owner.start === ctx.startToken : ctx.pidAlive(owner.pid);
  return live ? { kind: 'live', pid: owner.pid } : { kind: 'stale', content };
}

/**
 * Under `.lock.takeover`: removes `path` if it still holds `stale`, then
 * tries to link our own lock. True when we now hold the lock.
 */
async function takeOver(ctx: Ctx, path: string, stale: Buffer): Promise<boolean> {
  const takeover = `${ctx.dataDir}/${TAKEOVER_FILE}`;
  for (let waits = 0; !(await createByLink(ctx, takeover)); ) {
    const seen = await inspect(ctx, takeover);
    if (seen.kind === 'gone') continue;
    if (seen.kind === 'stale') {
      await removeIfStill(ctx, takeover, seen.content);
      continue;
    }
    // Someone is taking over right now (or an unparsable takeover file is still young): wait for it.
    if (++waits > ctx.takeoverWaits) {
      const pid = seen.kind === 'live' ? seen.pid : undefined;
      throw new LogError('LOG_LOCKED', `a takeover of ${path} by process ${pid ?? 'unknown'} did not finish (${takeover})`, { file: takeover, pid });
    }
    await ctx.sleep(ctx.takeoverWaitMs);
  }
  try {
    let now: Buffer | null;
    try {
      now = await ctx.fs.readFile(path);
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw fromFsError(err, 'read lock file', { file: path });
      now = null;
    }
    // Anything else than what we judged stale was created since: leave it to the next round.
    if (now === null || !now.equals(stale)) return false;
    await ctx.fs.unlink(path).catch((err: unknown) => {
      if (errnoOf(err) !== 'ENOENT') throw fromFsError(err, 'remove stale lock file', { file: path });
    });
    return await createByLink(ctx, path);
  } finally {
    await removeIfOurs(ctx, takeover);
  }
}

/** Unlinks `path` if it holds our bytes; never throws (release and cleanup paths). */
async function removeIfOurs(ctx: Ctx, path: string): Promise<void> {
  try {
    if ((await ctx.fs.readFile(path)).equals(ctx.body)) await ctx.fs.unlink(path);
  } catch {
    // Gone already, or unreadable: nothing of ours to remove.
  }
}

/**
 * Removes `path` only if it still holds `stale`: renames it to a unique name
 * (one renamer wins), re-reads it there, and links it back if it turned out
 * to be someone's fresh file.
 */
async function removeIfStill(ctx: Ctx, path: string, stale: Buffer): Promise<void> {
  const aside = `${ctx.dataDir}/.lock.${ctx.uniqueId()}.stale`;
  try {
    await ctx.fs.rename(path, aside);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return;
    throw fromFsError(err, 'set aside stale file', { file: path });
  }
  try {
    const content = await ctx.fs.readFile(aside);
    if (!content.equals(stale)) {
      await ctx.fs.link(aside, path).catch((err: unknown) => {
        if (errnoOf(err) !== 'EEXIST') throw fromFsError(err, 'put back a fresh file', { file: path });
      });
    }
  } finally {
    await ctx.fs.unlink(aside).catch(() => {});
  }
}

/** Best effort: removes scratch files a crash left behind, once they are older than `unparsableStaleMs`. */
async function sweepScratch(ctx: Ctx): Promise<void> {
  try {
    for (const name of await ctx.fs.readdir(ctx.dataDir)) {
      if (!SCRATCH_NAME.test(name)) continue;
      const file = `${ctx.dataDir}/${name}`;
      const { mtimeMs } = await ctx.fs.stat(file).catch(() => ({ mtimeMs: Infinity }));
      if (ctx.now() - mtimeMs >= ctx.unparsableStaleMs) await ctx.fs.unlink(file).catch(() => {});
    }
  } catch {
    // A failed sweep costs only a stray file.
  }
}
