import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { nodeFileSystem, type LogFileHandle, type LogFileStat, type LogFileSystem } from './file-system.ts';
import { acquireLock, type HeldLock, type LockOptions } from './lock-file.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function dir(): string {
  const d = mkdtempSync(join(tmpdir(), 'millstream-lock-'));
  dirs.push(d);
  return d;
}

type Op = 'open' | 'write' | 'sync' | 'link' | 'rename' | 'unlink' | 'readFile' | 'stat' | 'fsyncDir';
type Matcher = (path: string) => boolean;

interface Hold {
  /** Resolves when the opener has reached the held step (and is paused there). */
  reached: Promise<void>;
  /** Lets the opener go on; idempotent. */
  release(): void;
}

/**
 * The real file system with one breakpoint: the `nth` call of `op` on a
 * matching path pauses (before or after the real call) until released, so a
 * test can run a second opener to completion in exactly that gap.
 */
class SteppedFs implements LogFileSystem {
  private hold: { op: Op; match: Matcher; when: 'before' | 'after'; left: number; reached: () => void; gate: Promise<void> } | null = null;

  pauseAt(op: Op, match: Matcher, when: 'before' | 'after', nth = 1): Hold {
    let reached!: () => void;
    let release!: () => void;
    const reachedP = new Promise<void>((r) => (reached = r));
    const gate = new Promise<void>((r) => (release = r));
    this.hold = { op, match, when, left: nth, reached, gate };
    return { reached: reachedP, release };
  }

  private async step(op: Op, path: string, when: 'before' | 'after'): Promise<void> {
    const h = this.hold;
    if (h === null || h.op !== op || h.when !== when || !h.match(path)) return;
    if (--h.left > 0) return;
    this.hold = null;
    h.reached();
    await h.gate;
  }

  private async run<T>(op: Op, path: string, call: () => Promise<T>): Promise<T> {
    await this.step(op, path, 'before');
    const result = await call();
    await this.step(op, path, 'after');
    return result;
  }

  async open(path: string, mode: 'read' | 'readwrite' | 'create' | 'createExclusive'): Promise<LogFileHandle> {
    const inner = await this.run('open', path, () => nodeFileSystem.open(path, mode));
    return {
      write: (b, o, l, p) => this.run('write', path, () => inner.write(b, o, l, p)),
      writev: (bs, p) => this.run('write', path, () => inner.writev(bs, p)),
      read: (b, o, l, p) => inner.read(b, o, l, p),
      datasync: () => this.run('sync', path, () => inner.datasync()),
      sync: () => this.run('sync', path, () => inner.sync()),
      truncate: (l) => inner.truncate(l),
      size: () => inner.size(),
      close: () => inner.close(),
    };
  }
  mkdir(path: string): Promise<void> {
    return nodeFileSystem.mkdir(path);
  }
  readdir(path: string): Promise<string[]> {
    return nodeFileSystem.readdir(path);
  }
  stat(path: string): Promise<LogFileStat> {
    return this.run('stat', path, () => nodeFileSystem.stat(path));
  }
  statfs(path: string): Promise<{ freeBytes: number }> {
    return nodeFileSystem.statfs(path);
  }
  rename(from: string, to: string): Promise<void> {
    return this.run('rename', from, () => nodeFileSystem.rename(from, to));
  }
  link(from: string, to: string): Promise<void> {
    return this.run('link', to, () => nodeFileSystem.link(from, to));
  }
  unlink(path: string): Promise<void> {
    return this.run('unlink', path, () => nodeFileSystem.unlink(path));
  }
  readFile(path: string): Promise<Buffer> {
    return this.run('readFile', path, () => nodeFileSystem.readFile(path));
  }
  fsyncDir(path: string): Promise<void> {
    return this.run('fsyncDir', path, () => nodeFileSystem.fsyncDir(path));
  }
}

/** Which paths a breakpoint applies to, by label (the label shows in the test name). */
const PATHS = {
  any: () => true,
  scratch: (p) => p.endsWith('.tmp'),
  '.lock': (p) => p.endsWith('/.lock'),
  '.lock.takeover': (p) => p.endsWith('/.lock.takeover'),
  'set-aside': (p) => p.endsWith('.stale'),
} satisfies Record<string, Matcher>;
type PathLabel = keyof typeof PATHS;

const A = { pid: 1111, start: 11 };
const B = { pid: 2222, start: 22 };
const DEAD = 777;
/** Both openers are alive; DEAD (and 778) are not. */
const alive = (pid: number): boolean => pid !== DEAD && pid !== DEAD + 1;

/**
 * Opener A pauses at the given step; opener B runs to completion in that gap
 * (if B has to wait for A's takeover, its wait lets A go on and waits for A);
 * then A goes on. Returns both outcomes.
 */
async function race(d: string, op: Op, label: PathLabel, when: 'before' | 'after', nth = 1) {
  const fsA = new SteppedFs();
  const hold = fsA.pauseAt(op, PATHS[label], when, nth);
  const a = acquireLock(fsA, d, A.pid, A.start, alive);
  a.catch(() => {});
  await hold.reached;
  const whileAPaused = { lockExists: existsSync(join(d, '.lock')), lock: existsSync(join(d, '.lock')) ? readFileSync(join(d, '.lock'), 'utf8') : null };
  const bOptions: LockOptions = {
    sleep: async () => {
      hold.release();
      await a.catch(() => {});
    },
  };
  const [rb] = await Promise.allSettled([acquireLock(nodeFileSystem, d, B.pid, B.start, alive, bOptions)]);
  hold.release();
  const [ra] = await Promise.allSettled([a]);
  return { ra: ra!, rb: rb!, whileAPaused };
}

/** Exactly one opener holds the lock, the lock file holds its bytes, the other was refused naming it, no scratch is left. */
function expectOneOwner(d: string, ra: PromiseSettledResult<HeldLock>, rb: PromiseSettledResult<HeldLock>): typeof A {
  const won = [ra, rb].filter((r) => r.status === 'fulfilled');
  expect(won).toHaveLength(1);
  const [winner, loser] = ra.status === 'fulfilled' ? [A, rb] : [B, ra];
  expect(readFileSync(join(d, '.lock'), 'utf8')).toBe(`${winner.pid} ${winner.start}\n`);
  expect(loser.status === 'rejected' && loser.reason).toMatchObject({ code: 'LOG_LOCKED', context: { pid: winner.pid, file: join(d, '.lock') } });
  expect(readdirSync(d)).toEqual(['.lock']);
  return winner;
}

describe('lock file', () => {
  it('holds pid and start time; a second taker in the same incarnation is refused; release removes it', async () => {
    const d = dir();
    const lock = await acquireLock(nodeFileSystem, d, 4242, 1000, () => true);
    expect(readFileSync(join(d, '.lock'), 'utf8')).toBe('4242 1000\n');
    await expect(acquireLock(nodeFileSystem, d, 4242, 1000, () => true)).rejects.toMatchObject({ code: 'LOG_LOCKED', context: { pid: 4242 } });
    await lock.release();
    expect(readdirSync(d)).toEqual([]);
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
    expect(readdirSync(d)).toEqual(['.lock']);
  });

  // Opener A paused at each step of creating the lock while B opens: before the link
  // nothing is visible and B wins; from the link on, A's complete content is there and A wins.
  it.each([
    ['open', 'scratch', 'before', 'B'],
    ['open', 'scratch', 'after', 'B'],
    ['write', 'any', 'before', 'B'],
    ['write', 'any', 'after', 'B'],
    ['sync', 'any', 'after', 'B'],
    ['link', '.lock', 'before', 'B'],
    ['link', '.lock', 'after', 'A'],
    ['fsyncDir', 'any', 'before', 'A'],
  ] as const)('two openers, A paused at %s (%s, %s): exactly one owner (%s)', async (op, label, when, expected) => {
    const d = dir();
    const { ra, rb, whileAPaused } = await race(d, op, label, when);
    // Never an empty or partial lock file, whatever the step.
    if (whileAPaused.lockExists) expect(whileAPaused.lock).toBe(`${A.pid} ${A.start}\n`);
    const winner = expectOneOwner(d, ra, rb);
    expect(winner).toBe({ A, B }[expected]);
  });

  // Both openers find the lock of a dead process. A is paused at each step of its
  // takeover while B takes over: one of them ends up the owner, never both (before,
  // each could unlink the other's fresh lock).
  it.each([
    ['readFile', '.lock', 'after', 1, 'B'], // A judged it stale, has not started the takeover
    ['link', '.lock.takeover', 'before', 1, 'B'],
    ['link', '.lock.takeover', 'after', 1, 'A'], // A holds the takeover: B waits for it
    ['readFile', '.lock', 'after', 2, 'A'], // A re-read the stale lock under the takeover
    ['unlink', '.lock', 'before', 1, 'A'],
    ['unlink', '.lock', 'after', 1, 'B'], // .lock is gone: B's plain create gets in first
    ['link', '.lock', 'before', 1, 'B'],
    ['unlink', '.lock.takeover', 'before', 1, 'A'], // A holds .lock, is about to drop the takeover
  ] as const)('two takers of a stale lock, A paused at %s (%s, %s #%d): exactly one owner (%s)', async (op, label, when, nth, expected) => {
    const d = dir();
    writeFileSync(join(d, '.lock'), `${DEAD} 5\n`);
    const { ra, rb, whileAPaused } = await race(d, op, label, when, nth);
    if (whileAPaused.lockExists) expect([`${DEAD} 5\n`, `${A.pid} ${A.start}\n`]).toContain(whileAPaused.lock);
    const winner = expectOneOwner(d, ra, rb);
    expect(winner).toBe({ A, B }[expected]);
  });

  // A takeover file left by a taker that died: set aside by exactly one opener.
  it.each([
    ['rename', '.lock.takeover', 'before', 'B'],
    ['rename', '.lock.takeover', 'after', 'B'], // set aside by A; B creates its own takeover
    ['readFile', 'set-aside', 'after', 'B'],
  ] as const)('a dead taker left .lock.takeover; A paused at %s (%s, %s): exactly one owner (%s)', async (op, label, when, expected) => {
    const d = dir();
    writeFileSync(join(d, '.lock'), `${DEAD} 5\n`);
    writeFileSync(join(d, '.lock.takeover'), `${DEAD + 1} 5\n`);
    const { ra, rb } = await race(d, op, label, when);
    const winner = expectOneOwner(d, ra, rb);
    expect(winner).toBe({ A, B }[expected]);
  });

  it('a stale .lock.takeover alone does not block the next opener', async () => {
    const d = dir();
    writeFileSync(join(d, '.lock'), `${DEAD} 5\n`);
    writeFileSync(join(d, '.lock.takeover'), `${DEAD + 1} 5\n`);
    const lock = await acquireLock(nodeFileSystem, d, A.pid, A.start, alive);
    expect(readdirSync(d)).toEqual(['.lock']);
    await lock.release();
    expect(readdirSync(d)).toEqual([]);
  });

  it('an unparsable lock is refused naming the file while recent, taken over once older than unparsableStaleMs', async () => {
    for (const content of ['', 'garbage\n', '12 x\n']) {
      const d = dir();
      writeFileSync(join(d, '.lock'), content);
      const mtimeMs = statSync(join(d, '.lock')).mtimeMs;
      const young = { now: () => mtimeMs + 4999, unparsableStaleMs: 5000 };
      const err = await acquireLock(nodeFileSystem, d, A.pid, A.start, alive, young).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'LOG_LOCKED', context: { file: join(d, '.lock') } });
      expect((err as { context: object }).context).not.toHaveProperty('pid');
      expect((err as Error).message).toContain(join(d, '.lock'));
      expect(readFileSync(join(d, '.lock'), 'utf8')).toBe(content);
      const old = { now: () => mtimeMs + 5000, unparsableStaleMs: 5000 };
      await acquireLock(nodeFileSystem, d, A.pid, A.start, alive, old);
      expect(readFileSync(join(d, '.lock'), 'utf8')).toBe(`${A.pid} ${A.start}\n`);
      expect(readdirSync(d)).toEqual(['.lock']);
    }
  });

  it('release removes the lock only while it is still ours', async () => {
    const d = dir();
    const lock = await acquireLock(nodeFileSystem, d, A.pid, A.start, alive);
    // An operator removed it and another process took the directory.
    writeFileSync(join(d, '.lock'), `${B.pid} ${B.start}\n`);
    await lock.release();
    expect(readFileSync(join(d, '.lock'), 'utf8')).toBe(`${B.pid} ${B.start}\n`);
  });

  it('the next owner removes scratch files a crash left, once they are old', async () => {
    const d = dir();
    writeFileSync(join(d, '.lock.0badc0de.tmp'), `${DEAD} 5\n`);
    writeFileSync(join(d, '.lock.0badc0df.stale'), `${DEAD} 5\n`);
    writeFileSync(join(d, '.lock.00000001.tmp'), `${B.pid} ${B.start}\n`);
    const old = (Date.now() - 60_000) / 1000;
    utimesSync(join(d, '.lock.0badc0de.tmp'), old, old);
    utimesSync(join(d, '.lock.0badc0df.stale'), old, old);
    await acquireLock(nodeFileSystem, d, A.pid, A.start, alive);
    // The young one may be another opener's, about to be linked: kept.
    expect(readdirSync(d).sort()).toEqual(['.lock', '.lock.00000001.tmp']);
  });
});
