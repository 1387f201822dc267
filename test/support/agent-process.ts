/**
 * A real `millstream run` child process for end-to-end tests: its stdout and
 * stderr collected as lines, the status page URL read from its log, its exit,
 * and a wait that fails at once (with the last log lines) if the agent dies.
 */
import { spawn, type ChildProcess } from 'node:child_process';

const BIN = new URL('../../bin/millstream.js', import.meta.url).pathname;

export interface AgentProcess {
  readonly child: ChildProcess;
  /** Every line the agent wrote so far, stdout and stderr interleaved. */
  readonly lines: string[];
  /** The status page URL, once the agent has logged it. */
  url(): string | undefined;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Polls `fn` until it returns something other than undefined/false; throws if the agent exits first. */
  until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false): Promise<T>;
  /** SIGKILLs the agent if it still runs and waits for it to be gone. */
  kill(): Promise<void>;
}

export function startAgentProcess(args: readonly string[], options: { env?: Record<string, string>; cwd?: string } = {}): AgentProcess {
  const child = spawn(process.execPath, [BIN, 'run', ...args], {
    env: { ...process.env, ...options.env },
    ...(options.cwd ? { cwd: options.cwd } : {}),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let partial = '';
  const onData = (d: Buffer) => {
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return {
    child,
    lines,
    exit,
    url() {
      for (const l of lines) {
        const m = /status page at (http:\/\/[^"\s]+)/.exec(l) ?? /status page: (http:\/\/\S+)/.exec(l);
        if (m) return m[1];
      }
      return undefined;
    },
    async until(what, fn) {
      for (;;) {
        if (child.exitCode !== null) throw new Error(`agent exited (${child.exitCode}) while waiting for ${what}:\n${lines.slice(-30).join('\n')}`);
        const v = await fn();
        if (v !== undefined && v !== false) return v;
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exit;
      }
    },
  };
}
