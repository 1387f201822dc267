/**
 * SIGHUP: a running agent re-reads its config file and applies what can
 * change live (rules, log level, topic retention), refuses a broken file
 * with the problems named and keeps running on the previous config.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import type { AgentStatus } from '../agent/status.ts';
import { startAgentProcess, type AgentProcess } from './support/agent-process.ts';

const bin = new URL('../bin/millstream.js', import.meta.url).pathname;
let dir = '';
let agent: AgentProcess | undefined;
afterAll(async () => {
  await agent?.kill();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const config = (level: string, retentionMs: number) => `gateway: { id: gw-reload }
dataDir: data
log: { level: ${level} }
store: { minFreeBytes: 0 }
topics:
  widgets: { partitions: 2, retentionMs: ${retentionMs} }
rules: { dir: rules }
http: { port: 0 }
`;

it('SIGHUP reloads rules, log level and topic retention; a broken rule file degrades /healthz naming file:line:col; a broken config is refused and the agent keeps running', async () => {
  dir = await mkdtemp(join(tmpdir(), 'millstream-reload-'));
  await mkdir(join(dir, 'rules'));
  await writeFile(join(dir, 'rules', 'a.sql'), "CREATE STREAM red AS SELECT * FROM widgets WHERE colour = 'RED';\n");
  const file = join(dir, 'millstream.yaml');
  await writeFile(file, config('info', 86_400_000));
  agent = startAgentProcess(['--config', file], { cwd: dir });
  const { child, lines, until } = agent;
  const url = await until('the status URL', () => agent!.url());
  const status = async () => (await (await fetch(new URL('/api/status', url))).json()) as AgentStatus;
  await until('rule red running', async () => ((await status()).rules.some((r) => r.name === 'red') ? true : undefined));

  // A new rule file, a new log level and a new retention, then SIGHUP.
  await writeFile(join(dir, 'rules', 'b.sql'), 'CREATE STREAM hot AS SELECT * FROM widgets WHERE temp_celcius > 30;\n');
  await writeFile(file, config('debug', 3_600_000));
  child.kill('SIGHUP');
  const reloaded = await until('the reload line', () => lines.find((l) => l.includes('"msg":"reloaded on SIGHUP"')));
  const changes = (JSON.parse(reloaded) as { changes: string[] }).changes;
  expect(changes).toContain('log.level info → debug');
  expect(changes).toContain('topics.widgets');
  expect(changes).toContain('rules reloaded');
  await until('rule hot running', async () => ((await status()).rules.some((r) => r.name === 'hot') ? true : undefined));
  const describe = spawn(process.execPath, [bin, 'log', 'describe', 'widgets', '--data-dir', join(dir, 'data')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  describe.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((r) => describe.once('exit', r));
  expect(out).toMatch(/retention\.ms=3600000/);

  // A broken rule file: reported with file:line:col in /healthz; the rules already running keep running.
  await writeFile(join(dir, 'rules', 'b.sql'), 'CREATE STREAM hot AS SELECT * FROM widgets WHERE temp_celcius > ;\n');
  const degraded = await until('the rule problem in /healthz', async () => {
    const res = await fetch(new URL('/healthz', url));
    const text = await res.text();
    return res.status === 503 && text.includes('b.sql:1:') ? text : undefined;
  });
  expect(degraded).toMatch(/^- rule file .*b\.sql:1:\d+: /m);
  expect((await status()).rules.map((r) => r.name).sort()).toEqual(['hot', 'red']);
  await writeFile(join(dir, 'rules', 'b.sql'), 'CREATE STREAM hot AS SELECT * FROM widgets WHERE temp_celcius > 30;\n');
  await until('healthy again', async () => ((await fetch(new URL('/healthz', url))).status === 200 ? true : undefined));

  // A broken config: refused with the problem named; the agent keeps running on the previous one.
  await writeFile(file, `${config('debug', 3_600_000)}bogus: 1\n`);
  child.kill('SIGHUP');
  const refused = await until('the refusal', () => lines.find((l) => l.includes('reload on SIGHUP refused')));
  expect(refused).toContain('bogus: unknown key');
  expect((await status()).state).toBe('running');
  expect((await fetch(new URL('/healthz', url))).status).toBe(200);

  child.kill('SIGTERM');
  expect((await agent.exit).code).toBe(0);
});
