/**
 * The agent end to end, as an operator runs it: a real `millstream run`
 * process with a real sd_notify socket (socat) and the real systemd-notify,
 * real devices' protocols (the demo line: MQTT broker + sensors, Modbus TCP
 * PLC, serial scale on a pty), the status endpoints, the status page in
 * headless Chromium, and SIGTERM.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import type { Browser } from 'playwright-core';
import { openLogStore, type LogStoreApi } from '../log-store/index.ts';
import type { AgentStatus } from '../agent/status.ts';
import { startAgentProcess, type AgentProcess } from './support/agent-process.ts';
import { launchBrowser } from './support/browser.ts';
import { startBroker, type TestBroker } from './support/mqtt-broker.ts';
import { openNotifySocket, type NotifySocket } from './support/notify-socket.ts';

const bin = new URL('../bin/millstream.js', import.meta.url).pathname;
const dirs: string[] = [];
const agents: AgentProcess[] = [];

afterEach(async () => {
  for (const a of agents.splice(0)) await a.kill();
});

function startAgent(args: string[], env: Record<string, string> = {}): AgentProcess {
  const agent = startAgentProcess(args, { env });
  agents.push(agent);
  return agent;
}
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** Polls `fn` until it returns a value (for waits not tied to one agent process). */
async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, agent?: AgentProcess): Promise<T> {
  if (agent) return agent.until(what, fn);
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function getStatus(url: string): Promise<AgentStatus> {
  return (await (await fetch(new URL('/api/status', url))).json()) as AgentStatus;
}

async function countRecords(log: LogStoreApi, topic: string): Promise<{ total: number; values: string[] }> {
  const values: string[] = [];
  if (!log.hasTopic(topic)) return { total: 0, values };
  for (let p = 0; p < log.describe(topic).partitionsInfo.length; p++) {
    let off = log.earliestOffset(topic, p);
    const end = log.endOffset(topic, p);
    while (off < end) {
      const r = await log.read(topic, p, off, { maxRecords: 5000 });
      for (const rec of r.records) values.push(rec.value.toString());
      off = r.nextOffset;
    }
  }
  return { total: values.length, values };
}

const hasSocat = ['/usr/bin/socat', '/bin/socat'].some((p) => existsSync(p));

/** Processes whose command line mentions `text` (Linux /proc). */
function processesMentioning(text: string): number[] {
  const found: number[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(text)) found.push(Number(pid));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

describe('millstream run --demo', () => {
  let browser: Browser | undefined;
  afterAll(async () => {
    await browser?.close();
  });

  it.skipIf(!hasSocat)('leaves no simulated serial device (socat) behind when the agent is killed with SIGKILL', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'millstream-e2e-'));
    dirs.push(dir);
    const dataDir = join(dir, 'demo');
    const agent = startAgent(['--demo', '--data-dir', dataDir, '--http-port', '0']);
    const url = await until('the status page URL', () => agent.url(), agent);
    // the scale's readings arrive: its pty pair is up
    await until('readings from the demo scale', async () => (await getStatus(url)).sources.some((d) => d.source === 'demo-scale' && d.readings > 0), agent);
    expect(processesMentioning(join(dataDir, 'run', 'demo-scale')).length).toBeGreaterThan(0);
    await agent.kill();
    await until('no process left on the demo pty pair', () => processesMentioning(join(dataDir, 'run', 'demo-scale')).length === 0);
  });

  it('starts, notifies systemd, stores readings from every source, runs rules, serves status and the live page, and stops cleanly on SIGTERM with nothing lost', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'millstream-e2e-'));
    dirs.push(dir);
    let notify: NotifySocket | undefined;
    const env: Record<string, string> = {};
    if (hasSocat) {
      notify = await openNotifySocket(dir);
      env.NOTIFY_SOCKET = notify.path;
      env.WATCHDOG_USEC = '2000000';
    }
    const agent = startAgent(['--demo', '--data-dir', join(dir, 'demo'), '--http-port', '0'], env);
    try {
      const url = await until('the status page URL', () => agent.url(), agent);

      // Readings flow from every demo device into the log; the rules produce outputs; the status reports them.
      const status = await until('readings from every source and rule output', async () => {
        const s = await getStatus(url);
        const bySource = new Map<string, number>();
        for (const d of s.sources) bySource.set(d.source, (bySource.get(d.source) ?? 0) + d.readings);
        const widgets = s.topics.find((t) => t.name === 'widgets');
        const red = s.rules.find((r) => r.name === 'widgets_red');
        const ok =
          (bySource.get('demo-mqtt') ?? 0) > 20 &&
          (bySource.get('demo-plc') ?? 0) >= 2 &&
          (!hasSocat || (bySource.get('demo-scale') ?? 0) >= 2) &&
          (widgets?.endOffsetTotal ?? 0) > 20 &&
          (red?.recordsOut ?? 0) > 0 &&
          (s.topics.find((t) => t.name === 'widgets_red')?.endOffsetTotal ?? 0) > 0;
        return ok ? s : undefined;
      }, agent);
      expect(status.gateway).toBe('demo-gateway');
      expect(status.health.status).toBe('ok');
      expect(status.rules.map((r) => r.name).sort()).toEqual(['heavy_by_line', 'hot_sensors', 'widgets_red']);
      expect(status.components.every((c) => c.state === 'running')).toBe(true);

      const health = await fetch(new URL('/healthz', url));
      expect(health.status).toBe(200);
      const metrics = await (await fetch(new URL('/metrics', url))).text();
      expect(metrics).toMatch(/^millstream_source_readings_total\{source="demo-mqtt",device="demo-mqtt",kind="mqtt"\} [1-9]\d*$/m);
      expect(metrics).toMatch(/^millstream_log_fsync_seconds_count [1-9]\d*$/m);
      expect(metrics).toMatch(/^millstream_rule_lag_records\{rule="widgets_red"\} \d+$/m);

      // The operator's command asks the running agent.
      const cli = spawn(process.execPath, [bin, 'status', '--url', url], { stdio: ['ignore', 'pipe', 'pipe'] });
      let cliOut = '';
      cli.stdout!.on('data', (d: Buffer) => (cliOut += d.toString()));
      expect(await new Promise((r) => cli.once('exit', r))).toBe(0);
      expect(cliOut).toMatch(/^millstream 0\.1\.0 on demo-gateway \(pid \d+, up \d+ s\): ok$/m);
      expect(cliOut).toMatch(/^demo-plc\s+demo-plc\/plc-1\s+modbus/m);
      expect(cliOut).toMatch(/^widgets_red\s+(running|idle)/m);

      // The status page in headless Chromium: live numbers that change as readings arrive, and the chart draws.
      browser = await launchBrowser();
      const page = await browser.newPage();
      const pageErrors: string[] = [];
      page.on('pageerror', (e) => pageErrors.push(e.message));
      await page.goto(url);
      await page.getByTestId('gateway').filter({ hasText: 'demo-gateway' }).waitFor();
      const first = await page.getByTestId('stored').textContent();
      await page.waitForFunction(`document.querySelector('[data-testid="stored"]').textContent !== ${JSON.stringify(first)}`);
      await page.waitForFunction(`Number(document.querySelector('[data-testid="chart"]').dataset.series) >= 3`);
      expect(Number(await page.getByTestId('chart').getAttribute('data-points'))).toBeGreaterThan(5);
      expect(await page.locator('[data-testid="sources"] tbody tr').count()).toBeGreaterThanOrEqual(hasSocat ? 4 : 3);
      expect(pageErrors).toEqual([]);
      await page.close();

      if (notify) {
        const msgs = await until('READY=1 and a watchdog ping', async () => {
          const m = await notify!.messages();
          return m.some((x) => x.includes('READY=1')) && m.some((x) => x.includes('WATCHDOG=1')) ? m : undefined;
        }, agent);
        const ready = msgs.find((x) => x.includes('READY=1'))!;
        expect(ready).toContain(`MAINPID=${agent.child.pid}`);
        expect(ready.find((l) => l.startsWith('STATUS='))).toMatch(/devices connected/);
      }

      // SIGTERM: exit 0, and every reading the sources took in is in the log.
      agent.child.kill('SIGTERM');
      const { code } = await agent.exit;
      expect(code, agent.lines.slice(-20).join('\n')).toBe(0);
      const summaryLine = agent.lines.find((l) => l.includes('"msg":"stopped cleanly"'));
      expect(summaryLine).toBeDefined();
      const summary = JSON.parse(summaryLine!) as { storedByTopic: Record<string, number>; devices: Array<{ readings: number }> };
      const readingsIn = summary.devices.reduce((a, d) => a + d.readings, 0);
      expect(readingsIn).toBeGreaterThan(20);
      expect(summary.storedByTopic.widgets).toBe(readingsIn);
      expect(agent.lines.some((l) => l.includes('never stored'))).toBe(false);
      // the demo's devices stop sending before the agent stops, and go away only after it: no device is lost on the way out
      expect(agent.lines.filter((l) => l.includes('BRIDGE_DEVICE_UNAVAILABLE'))).toEqual([]);
      if (notify) expect((await notify.messages()).some((m) => m.includes('STOPPING=1'))).toBe(true);

      const log = await openLogStore({ dataDir: join(dir, 'demo'), readOnly: true, minFreeBytes: 0 });
      try {
        expect((await countRecords(log, 'widgets')).total).toBe(readingsIn);
      } finally {
        await log.close();
      }
    } finally {
      await notify?.close();
    }
  });
});

describe('millstream run --config (MQTT source, external broker)', () => {
  let broker: TestBroker | undefined;
  afterAll(async () => {
    await broker?.close();
  });

  it('stores every published reading exactly once across a SIGTERM mid-stream and a restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'millstream-e2e-'));
    dirs.push(dir);
    broker = await startBroker('aedes');
    const port = broker.port;
    const config = join(dir, 'millstream.yaml');
    await writeFile(
      config,
      `gateway: { id: gw-e2e }
dataDir: ${JSON.stringify(join(dir, 'data'))}
log: { level: info }
store: { minFreeBytes: 0 }
topics:
  widgets: { partitions: 3 }
sources:
  - name: hall
    topic: widgets
    mqtt:
      url: mqtt://127.0.0.1:${port}
      clientId: e2e-agent
      subscriptions: [{ topic: "factory/+production_line/+sensor_id/reading", qos: 1 }]
http: { port: 0 }
`,
    );
    const check = spawn(process.execPath, [bin, 'config', 'check', config]);
    expect(await new Promise((r) => check.once('exit', r))).toBe(0);

    const first = startAgent(['--config', config]);
    const url = await until('status URL', () => first.url(), first);
    await until('the MQTT source connected', async () => (await getStatus(url)).sources.some((s) => s.connected) || undefined, first);

    const total = 3000;
    const publisher = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: 'e2e-publisher' });
    let acked = 0;
    const publishing = (async () => {
      for (let i = 0; i < total; i++) {
        const sensor = `s-${i % 7}`;
        await publisher.publishAsync(`factory/w0${i % 2}/${sensor}/reading`, JSON.stringify({ seq: i, sensor_id: sensor, temp_celcius: 20 + (i % 5) }), { qos: 1 });
        acked++;
      }
    })();
    // Stop the agent in the middle of the stream.
    await until('a third of the stream stored', async () => ((await getStatus(url)).sources[0]?.readings ?? 0) > total / 3 || undefined, first);
    first.child.kill('SIGTERM');
    expect((await first.exit).code).toBe(0);
    await publishing;
    expect(acked).toBe(total);
    await publisher.endAsync();

    // Restart: the broker kept the rest for the persistent session.
    const second = startAgent(['--config', config]);
    const url2 = await until('status URL', () => second.url(), second);
    const stored = await until('every reading stored', async () => {
      const s = await getStatus(url2);
      const w = s.topics.find((t) => t.name === 'widgets');
      return (w?.endOffsetTotal ?? 0) >= total ? w!.endOffsetTotal : undefined;
    }, second);
    second.child.kill('SIGTERM');
    expect((await second.exit).code).toBe(0);
    expect(stored).toBe(total);

    const log = await openLogStore({ dataDir: join(dir, 'data'), readOnly: true, minFreeBytes: 0 });
    try {
      const { values } = await countRecords(log, 'widgets');
      const seqs = values.map((v) => (JSON.parse(v) as { seq: number }).seq).sort((a, b) => a - b);
      expect(seqs).toEqual(Array.from({ length: total }, (_, i) => i));
      // The topic levels became fields.
      expect(JSON.parse(values[0]!)).toMatchObject({ production_line: expect.stringMatching(/^w0[01]$/), sensor_id: expect.stringMatching(/^s-\d$/) });
    } finally {
      await log.close();
    }
  });
});
