/**
 * `millstream status`: asks a running agent (its /api/status on localhost)
 * and prints the headline figures: health and reasons, sources, topics,
 * rules, replication. Exit code 0 when healthy, 3 when degraded, 1 when the
 * agent cannot be reached (so scripts and monitoring can use it).
 */
import type { Command } from 'commander';
import { AgentError } from '../errors.ts';
import type { AgentStatus } from '../status.ts';

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

export function formatStatus(s: AgentStatus): string {
  const out: string[] = [];
  const uptimeS = Math.round((s.now - s.startedAt) / 1000);
  out.push(`millstream ${s.version} on ${s.gateway} (pid ${s.pid}, up ${uptimeS} s): ${s.health.status}`);
  for (const r of s.health.reasons) out.push(`  - ${r}`);
  out.push('', table([['SOURCE', 'DEVICE', 'KIND', 'STATE', 'READINGS', 'DECODE ERR', 'DEAD LETTERS', 'LAST ERROR'],
    ...s.sources.map((d) => [d.source, d.device, d.kind, d.state, String(d.readings), String(d.decodeErrors), String(d.deadLetters), d.lastError ?? ''])]));
  out.push('', table([['TOPIC', 'PARTITIONS', 'RECORDS', 'RATE/S', 'BYTES'],
    ...s.topics.map((t) => [t.name, String(t.partitions.length), String(t.endOffsetTotal), t.ratePerS.toFixed(1), String(t.bytes)])]));
  if (s.rules.length) {
    out.push('', table([['RULE', 'STATE', 'LAG', 'IN', 'OUT', 'LATE', 'LAST ERROR'],
      ...s.rules.map((r) => [r.name, r.state, String(r.lag), String(r.recordsIn), String(r.recordsOut), String(r.recordsLate), r.lastError ?? ''])]));
  }
  if (s.replication.enabled) {
    out.push('', table([['REPLICATED', 'PARTITION', 'POSITION', 'END', 'LAG', 'LAG S', 'STATE', 'LAST ERROR'],
      ...s.replication.partitions.map((p) => [p.topic, String(p.partition), String(p.position), String(p.endOffset), String(p.lagRecords), p.lagSeconds.toFixed(1), p.state, p.lastError ?? ''])]));
  }
  return `${out.join('\n')}\n`;
}

export function register(program: Command): void {
  program
    .command('status')
    .description('show the running agent\'s health, sources, topics, rules and replication (exit 0 ok, 3 degraded, 1 unreachable)')
    .option('--url <url>', 'the agent\'s HTTP address', 'http://127.0.0.1:8080/')
    .option('-c, --config <file>', 'take the HTTP address from this config file')
    .option('--json', 'print the status as JSON')
    .action(async (o: { url: string; config?: string; json?: boolean }) => {
      let url = o.url;
      if (o.config) {
        const { loadConfig } = await import('../config.ts');
        const cfg = await loadConfig(o.config);
        url = `http://${cfg.http.host.includes(':') ? `[${cfg.http.host}]` : cfg.http.host}:${cfg.http.port}/`;
      }
      let s: AgentStatus;
      try {
        const res = await fetch(new URL('/api/status', url), { signal: AbortSignal.timeout(5000) });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        s = (await res.json()) as AgentStatus;
      } catch (err) {
        throw new AgentError('USAGE', `status: no agent answering at ${url}: ${(err as Error).message} (is it running? is http enabled?)`, { url }, err);
      }
      process.stdout.write(o.json ? `${JSON.stringify(s, null, 2)}\n` : formatStatus(s));
      process.exitCode = s.health.status === 'ok' ? 0 : 3;
    });
}
