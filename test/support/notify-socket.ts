/**
 * A real sd_notify receiver for tests: a small Python script
 * (notify-receiver.py) binds an AF_UNIX datagram socket (Node cannot),
 * closes the descriptors a message passes (as systemd does, which completes
 * systemd-notify's barrier) and appends each message, followed by a
 * separator line, to a file the test reads. Used with the real
 * `systemd-notify` sender.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NotifySocket {
  readonly path: string;
  /** Every datagram received so far, each as its list of assignments. */
  messages(): Promise<string[][]>;
  close(): Promise<void>;
}

export async function openNotifySocket(dir: string): Promise<NotifySocket> {
  const path = join(dir, 'notify.sock');
  const out = join(dir, 'notify.out');
  const script = fileURLToPath(new URL('./notify-receiver.py', import.meta.url));
  const child: ChildProcess = spawn('python3', [script, path, out], { stdio: 'ignore' });
  await new Promise<void>((resolve, reject) => {
    const started = Date.now();
    const check = () => {
      if (existsSync(path)) resolve();
      else if (child.exitCode !== null) reject(new Error(`the notify receiver (python3) exited with ${child.exitCode}`));
      else if (Date.now() - started > 10_000) reject(new Error('the notify receiver did not create its socket'));
      else setTimeout(check, 20);
    };
    child.once('error', reject);
    check();
  });
  return {
    path,
    async messages() {
      const text = existsSync(out) ? await readFile(out, 'utf8') : '';
      return text
        .split('\n@@\n')
        .map((m) => m.split('\n').filter((l) => l && l !== '@@'))
        .filter((m) => m.length > 0);
    },
    async close() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
    },
  };
}
