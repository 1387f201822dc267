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

  it('disables itself after one failure, logging once, never throwing', async () => {
    const warn = vi.fn();
    const send = vi.fn(async () => {
      throw new Error('ENOENT systemd-notify');
    });
    const n = createNotifier({ env: { NOTIFY_SOCKET: '/run/x' }, pid: 1, logger: { ...quiet, warn }, send });
    await n.ready('a');
    await n.status('b');
    expect(send).toHaveBeenCalledTimes(1);
    expect(warn).toHaveBeenCalledTimes(1);
  });

  it.skipIf(!hasSystemdNotify)('delivers READY, STATUS and STOPPING through the real systemd-notify to a real socket', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'millstream-notify-'));
    const sock = await openNotifySocket(dir);
    try {
      const n = createNotifier({ env: { NOTIFY_SOCKET: sock.path }, pid: process.pid, logger: quiet });
      await n.ready('running: 3 sources');
      await n.stopping('stopping');
      let msgs: string[][] = [];
      for (let i = 0; i < 200 && msgs.length < 2; i++) {
        msgs = await sock.messages();
        await new Promise((r) => setTimeout(r, 25));
      }
      expect(msgs[0]).toEqual([`MAINPID=${process.pid}`, 'READY=1', 'STATUS=running: 3 sources']);
      expect(msgs[1]).toEqual([`MAINPID=${process.pid}`, 'STOPPING=1', 'STATUS=stopping']);
    } finally {
      await sock.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
