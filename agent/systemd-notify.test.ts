import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openNotifySocket } from '../test/support/notify-socket.ts';
import { createNotifier } from './systemd-notify.ts';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const hasSystemdNotify = ['/usr/bin/systemd-notify', '/bin/systemd-notify'].some((p) => existsSync(p));

describe('systemd notifier', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('is inert without NOTIFY_SOCKET', async () => {
    const send = vi.fn(async () => {});
    const n = createNotifier({ env: {}, pid: 42, logger: quiet, send });
    expect(n.active).toBe(false);
    await n.ready('up');
    n.startWatchdog();
    expect(send).not.toHaveBeenCalled();
    expect(n.watchdogIntervalMs).toBe(0);
  });

  it('pings the watchdog at half of WatchdogSec, only for our pid, from the event loop', async () => {
    vi.useFakeTimers();
    const sent: string[][] = [];
    const n = createNotifier({
      env: { NOTIFY_SOCKET: '/run/x', WATCHDOG_USEC: '10000000', WATCHDOG_PID: '42' },
      pid: 42,
      logger: quiet,
      send: async (_s, _p, a) => {
        sent.push(a);
      },
    });
    expect(n.watchdogIntervalMs).toBe(5000);
    n.startWatchdog();
    await vi.advanceTimersByTimeAsync(15_000);
    expect(sent.filter((a) => a[0] === 'WATCHDOG=1')).toHaveLength(3);
    n.close();
    await vi.advanceTimersByTimeAsync(15_000);
    expect(sent).toHaveLength(3);
    const other = createNotifier({ env: { NOTIFY_SOCKET: '/run/x', WATCHDOG_USEC: '10000000', WATCHDOG_PID: '7' }, pid: 42, logger: quiet });
    expect(other.watchdogIntervalMs).toBe(0);
  });

  it('a missing systemd-notify disables it, logged once; other failures are logged once and never stop later messages', async () => {
    const warn = vi.fn();
    const missing = vi.fn(async () => {
      throw Object.assign(new Error('spawn systemd-notify ENOENT'), { code: 'ENOENT' });
    });
    const n = createNotifier({ env: { NOTIFY_SOCKET: '/run/x' }, pid: 1, logger: { ...quiet, warn }, send: missing });
    await n.ready('a');
    await n.status('b');
    expect(missing).toHaveBeenCalledTimes(1);
    expect(warn).toHaveBeenCalledTimes(1);

    const warn2 = vi.fn();
    let calls = 0;
    const flaky = vi.fn(async () => {
      calls++;
      if (calls <= 2) throw new Error('Failed to invoke barrier: Connection timed out');
    });
    const m = createNotifier({ env: { NOTIFY_SOCKET: '/run/x' }, pid: 1, logger: { ...quiet, warn: warn2 }, send: flaky });
    await m.ready('a');
    await m.status('b');
    await m.status('c');
    expect(flaky).toHaveBeenCalledTimes(3);
    expect(warn2).toHaveBeenCalledTimes(1);
  });

  it.skipIf(!hasSystemdNotify)('delivers READY, STATUS and STOPPING through the real systemd-notify (waiting on its barrier) to a real socket', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'millstream-notify-'));
    const sock = await openNotifySocket(dir);
    try {
      const n = createNotifier({ env: { NOTIFY_SOCKET: sock.path }, pid: process.pid, logger: quiet });
      await n.ready('running: 3 sources');
      await n.stopping('stopping');
      // systemd-notify follows each message with a BARRIER=1 datagram and waits until the receiver has handled it.
      const msgs = (await sock.messages()).filter((m) => !m.includes('BARRIER=1'));
      expect(msgs[0]).toEqual([`MAINPID=${process.pid}`, 'READY=1', 'STATUS=running: 3 sources']);
      expect(msgs[1]).toEqual([`MAINPID=${process.pid}`, 'STOPPING=1', 'STATUS=stopping']);
    } finally {
      await sock.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
