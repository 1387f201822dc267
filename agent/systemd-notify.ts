/**
 * systemd's notify protocol (sd_notify): READY=1 once the agent runs,
 * WATCHDOG=1 pings from the event loop (a blocked loop misses them and
 * systemd restarts the service), STATUS= lines, STOPPING=1.
 *
 * Node cannot send AF_UNIX datagrams, so each message goes through
 * `systemd-notify` (shipped with systemd wherever NOTIFY_SOCKET is set; the
 * unit says NotifyAccess=all because the sender is our child). It runs
 * without --no-block on purpose: it then waits on a barrier until systemd has
 * processed the message, so systemd can still attribute it to our unit (a
 * sender that exits first may have its message dropped). The transport is a
 * port (`send`) so a native one can replace it in one place. Messages are
 * sent one at a time, in order. Failures are never fatal: a missing
 * systemd-notify disables the notifier (logged once); any other failure is
 * logged once per distinct error and the next message is tried as usual.
 */
import { execFile } from 'node:child_process';
import type { Logger } from '../log-store/index.ts';

export interface NotifyEnv {
  NOTIFY_SOCKET?: string;
  WATCHDOG_USEC?: string;
  WATCHDOG_PID?: string;
}

export interface NotifierOptions {
  env: NotifyEnv;
  pid: number;
  logger: Logger;
  /** Sends one message (newline-separated assignments). Default: systemd-notify. */
  send?: (socket: string, pid: number, assignments: string[]) => Promise<void>;
  setInterval?: (fn: () => void, ms: number) => { unref?(): void };
  clearInterval?: (handle: unknown) => void;
}

export interface Notifier {
  /** True when running under systemd with a notify socket. */
  readonly active: boolean;
  /** Watchdog ping interval in ms (half of WatchdogSec), or 0 when systemd set no watchdog. */
  readonly watchdogIntervalMs: number;
  ready(status: string): Promise<void>;
  status(status: string): Promise<void>;
  stopping(status: string): Promise<void>;
  reloading(): Promise<void>;
  /** Starts watchdog pings from the event loop. */
  startWatchdog(): void;
  close(): void;
}

function systemdNotify(socket: string, pid: number, assignments: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('systemd-notify', [`--pid=${pid}`, ...assignments], { env: { ...process.env, NOTIFY_SOCKET: socket }, timeout: 10_000 }, (err) =>
      err ? reject(err) : resolve(),
    );
  });
}

export function createNotifier(options: NotifierOptions): Notifier {
  const socket = options.env.NOTIFY_SOCKET;
  const usec = Number(options.env.WATCHDOG_USEC ?? 0);
  const forUs = options.env.WATCHDOG_PID === undefined || Number(options.env.WATCHDOG_PID) === options.pid;
  const watchdogIntervalMs = socket && usec > 0 && forUs ? Math.max(1, Math.floor(usec / 2000)) : 0;
  const send = options.send ?? systemdNotify;
  const setIntervalFn = options.setInterval ?? setInterval;
  const clearIntervalFn = options.clearInterval ?? ((h: unknown) => clearInterval(h as NodeJS.Timeout));
  let chain: Promise<void> = Promise.resolve();
  let broken = false;
  let lastFailure: string | null = null;
  let timer: { unref?(): void } | undefined;
  let watchdogInFlight = false;

  const post = (assignments: string[]): Promise<void> => {
    if (!socket || broken) return Promise.resolve();
    chain = chain.then(() =>
      send(socket, options.pid, assignments).then(
        () => {
          lastFailure = null;
        },
        (err: unknown) => {
          const e = err as NodeJS.ErrnoException;
          if (e?.code === 'ENOENT') {
            broken = true;
            options.logger.warn({ err, socket }, 'systemd-notify not found; no notifications will be sent');
            return;
          }
          const what = String(e?.message ?? err);
          if (what !== lastFailure) options.logger.warn({ err, socket, assignments }, 'systemd notify failed; later messages are still sent');
          lastFailure = what;
        },
      ),
    );
    return chain;
  };
  const clean = (s: string) => s.replace(/[\r\n]+/g, ' ');

  return {
    active: Boolean(socket),
    watchdogIntervalMs,
    ready: (status) => post(['READY=1', `STATUS=${clean(status)}`]),
    status: (status) => post([`STATUS=${clean(status)}`]),
    stopping: (status) => post(['STOPPING=1', `STATUS=${clean(status)}`]),
    reloading: () => post(['RELOADING=1']).then(() => post(['READY=1'])),
    startWatchdog() {
      if (!watchdogIntervalMs || timer) return;
      timer = setIntervalFn(() => {
        // The ping runs on the event loop: if the loop is blocked, no ping goes out and systemd restarts us.
        if (watchdogInFlight) return;
        watchdogInFlight = true;
        void post(['WATCHDOG=1']).finally(() => (watchdogInFlight = false));
      }, watchdogIntervalMs);
      timer.unref?.();
    },
    close() {
      if (timer) clearIntervalFn(timer);
      timer = undefined;
    },
  };
}
