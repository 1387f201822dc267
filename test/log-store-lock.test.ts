/**
 * The data directory lock across real processes: CHILDREN node processes
 * (tsx, the real `openLogStore`) are told to open the same data directory at
 * the same moment, round after round. In every round exactly one must own it
 * and every other must get LOG_LOCKED naming the owner's pid and the lock
 * file; the owner then closes and the next round starts. The second part
 * starts each round from a lock left by a dead process, which exactly one of
 * the racers must take over.
 *
 * Children are started once and driven over stdin (`open`, `close`), one JSON
 * line of stdout per command, so the rounds race the lock, not start-up.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { collectLines, type LineCollector } from './support/cli.ts';

const CHILDREN = 4;
const ROUNDS = Number(process.env.MILLSTREAM_LOCK_ROUNDS ?? (process.env.MILLSTREAM_LONG === '1' ? 200 : 20));
const STALE_ROUNDS = Math.max(1, Math.round(ROUNDS / 2));
const REPO = fileURLToPath(new URL('..', import.meta.url));
const LOG_STORE_INDEX = fileURLToPath(new URL('../log-store/index.ts', import.meta.url));

/** The child: opens or closes the store on command, answers one JSON line each. */
const CHILD = `
import { createInterface } from 'node:readline';
const { openLogStore } = await import(process.env.LOCK_TEST_INDEX);
const dataDir = process.env.LOCK_TEST_DIR;
const send = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
let store = null;
send({ ready: true });
for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'open') {
    try {
      store = await openLogStore({ dataDir, minFreeBytes: 0, retentionCheckIntervalMs: 0 });
      send({ ok: true });
    } catch (e) {
      send({ ok: false, code: e.code, context: e.context, message: e.message });
    }
  } else if (line === 'close') {
    await store?.close();
    store = null;
    send({ closed: true });
  }
}
`;

interface Reply {
  ready?: boolean;
  ok?: boolean;
  closed?: boolean;
  code?: string;
  context?: { pid?: number; file?: string };
  message?: string;
}

interface Child {
  proc: ChildProcessWithoutNullStreams;
  out: LineCollector;
  stderr: string;
  /** Replies consumed so far. */
  seen: number;
}

const dirs: string[] = [];
const children: Child[] = [];

function start(dataDir: string): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], {
    cwd: REPO,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, LOCK_TEST_INDEX: LOG_STORE_INDEX, LOCK_TEST_DIR: dataDir },
  });
  const child: Child = { proc, out: collectLines(proc.stdout), stderr: '', seen: 0 };
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (child.stderr += d));
  proc.stdin.on('error', () => {});
  children.push(child);
  return child;
}

async function reply(child: Child): Promise<Reply> {
  const want = child.seen + 1;
  await child.out.until((lines) => lines.filter((l) => l.trim() !== '').length >= want).catch((err: unknown) => {
    throw new Error(`child ${child.proc.pid} ended: ${String(err)}\n${child.stderr}`);
  });
  child.seen = want;
  return JSON.parse(child.out.lines.filter((l) => l.trim() !== '')[want - 1]!) as Reply;
}

async function startAll(dataDir: string): Promise<Child[]> {
  const group = Array.from({ length: CHILDREN }, () => start(dataDir));
  for (const c of group) expect(await reply(c)).toEqual({ ready: true });
  return group;
}

/** All children open at once; returns the owner after checking that the others were refused naming it. */
async function raceOpen(group: Child[], dataDir: string, round: number): Promise<Child> {
  // Told in a rotating order, so no child always starts first.
  for (let i = 0; i < group.length; i++) group[(round + i) % group.length]!.proc.stdin.write('open\n');
  const replies = await Promise.all(group.map(reply));
  const owners = group.filter((_, i) => replies[i]!.ok === true);
  expect(owners.map((c) => c.proc.pid), `round ${round}: ${JSON.stringify(replies)}`).toHaveLength(1);
  const owner = owners[0]!;
  const lockFile = join(dataDir, '.lock');
  expect(readFileSync(lockFile, 'utf8')).toMatch(new RegExp(`^${owner.proc.pid} \\d+\\n$`));
  replies.forEach((r, i) => {
    if (group[i] === owner) return;
    expect(r, `round ${round}`).toMatchObject({ ok: false, code: 'LOG_LOCKED', context: { pid: owner.proc.pid, file: lockFile } });
    expect(r.message).toContain(String(owner.proc.pid));
  });
  return owner;
}

async function closeAll(group: Child[], dataDir: string): Promise<void> {
  for (const c of group) c.proc.stdin.write('close\n');
  for (const c of group) expect(await reply(c)).toEqual({ closed: true });
  // The owner removed its lock; no scratch or takeover file is left behind.
  expect(readdirSync(dataDir).filter((n) => n.startsWith('.lock'))).toEqual([]);
}

afterAll(async () => {
  await Promise.all(
    children.map(async ({ proc }) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const gone = new Promise((resolve) => proc.once('exit', resolve));
      proc.kill('SIGKILL');
      await gone;
    }),
  );
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'millstream-log-lock-'));
  dirs.push(d);
  return d;
}

/** The pid of a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

describe('data directory lock across processes', () => {
  it(`${CHILDREN} processes open one data directory at once, ${ROUNDS} times: exactly one owner each time`, async () => {
    const dir = dataDir();
    const group = await startAll(dir);
    for (let round = 0; round < ROUNDS; round++) {
      await raceOpen(group, dir, round);
      await closeAll(group, dir);
    }
  });

  it(`a dead process's lock is taken over by exactly one of ${CHILDREN} racing openers (${STALE_ROUNDS} rounds)`, async () => {
    const dir = dataDir();
    const group = await startAll(dir);
    const dead = deadPid();
    for (let round = 0; round < STALE_ROUNDS; round++) {
      writeFileSync(join(dir, '.lock'), `${dead} 12345\n`);
      const owner = await raceOpen(group, dir, round);
      expect(owner.proc.pid).not.toBe(dead);
      await closeAll(group, dir);
    }
  });
});
