import { createWriteStream } from 'node:fs';
import type { Command } from 'commander';
import { AgentError } from '../errors.ts';
import type { ReplayBound, ReplayProgress } from '../replay.ts';

interface ReplayCliOptions {
  topic: string;
  dataDir: string;
  capture?: string;
  partitions?: string;
  from?: string;
  to?: string;
  rules?: string;
  speed: string;
  step: string;
  into?: string;
  intoDataDir?: string;
  out: string;
  config?: string;
}

/** `2020-02-14T12:00:00Z` → time; `1234` → offset (log input) ; anything else is an error naming the flag. */
export function parseBound(text: string | undefined, flag: string, allowOffset: boolean): ReplayBound | undefined {
  if (text === undefined) return undefined;
  if (/^\d+$/.test(text)) {
    if (!allowOffset) throw new AgentError('USAGE', `${flag} ${text}: a capture file is replayed by time; give an ISO-8601 time`);
    return { offset: Number(text) };
  }
  const t = Date.parse(text);
  if (!Number.isFinite(t)) throw new AgentError('USAGE', `${flag} ${JSON.stringify(text)}: expected an offset or an ISO-8601 time such as 2020-02-14T12:00:00Z`);
  return { time: t };
}

export function parseSpeed(text: string): number | 'max' {
  if (text === 'max') return 'max';
  const m = /^(\d+(?:\.\d+)?)x$/.exec(text);
  if (!m || Number(m[1]) <= 0) throw new AgentError('USAGE', `--speed ${JSON.stringify(text)}: expected 1x, 10x, ... or max`);
  return Number(m[1]);
}

/** A progress bar with rate and ETA on a terminal; a plain line every few seconds otherwise. */
export function progressReporter(stream: NodeJS.WriteStream, now: () => number = Date.now): { update(p: ReplayProgress): void; done(): void } {
  const started = now();
  let lastPlain = 0;
  return {
    update(p) {
      const elapsedS = Math.max(0.001, (now() - started) / 1000);
      const rate = p.done / elapsedS;
      const eta = rate > 0 ? (p.total - p.done) / rate : 0;
      const pct = p.total ? (100 * p.done) / p.total : 100;
      const at = p.eventTime !== null ? new Date(p.eventTime).toISOString() : '-';
      if (stream.isTTY) {
        const width = 30;
        const filled = Math.round((pct / 100) * width);
        stream.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct.toFixed(1)}% ${p.done}/${p.total} records ${Math.round(rate)}/s ETA ${Math.ceil(eta)}s  at ${at}\x1b[K`);
      } else if (now() - lastPlain >= 2000 || p.done === p.total) {
        lastPlain = now();
        stream.write(`replay: ${p.done}/${p.total} records (${pct.toFixed(1)}%), ${Math.round(rate)} records/s, ETA ${Math.ceil(eta)} s, event time ${at}\n`);
      }
    },
    done() {
      if (stream.isTTY) stream.write('\n');
    },
  };
}

export function register(program: Command): void {
  program
    .command('replay')
    .description('feed recorded readings through rules in a sandbox, deterministically (the live log, rules state and positions are not touched)')
    .requiredOption('--topic <topic>', 'topic to replay (the rules\' source topic)')
    .option('--data-dir <dir>', 'log data directory to read (read-only; the agent may be running); default: the config\'s dataDir with --config, else ./data', './data')
    .option('--capture <file>', 'replay a raw capture file through the device decoders instead of the log')
    .option('--partitions <n>', 'with --capture: partitions of the sandbox topic', '1')
    .option('-c, --config <file>', 'agent config: its dataDir is the default --data-dir; with --capture, its register maps decode Modbus frames')
    .option('--from <offset|ISO>', 'first offset (per partition) or event time to replay')
    .option('--to <offset|ISO>', 'stop before this offset or event time')
    .option('--rules <folder|file>', 'rules folder or .sql file to run; without it the readings themselves are printed')
    .option('--speed <1x|10x|max>', 'pace of event time (output does not depend on it)', 'max')
    .option('--step <ms>', 'event time fed per step', '1000')
    .option('--into <topic>', 'append the output rows to this topic (in --into-data-dir) instead of printing them')
    .option('--into-data-dir <dir>', 'log data directory for --into (must not be owned by a running agent)')
    .option('--out <stdout|file>', 'where output rows go as JSON lines', 'stdout')
    .action(async (o: ReplayCliOptions, command: Command) => {
      if (o.into && command.getOptionValueSource('out') === 'cli') throw new AgentError('USAGE', 'replay: give either --into <topic> or --out <stdout|file>, not both');
      if (o.config && command.getOptionValueSource('dataDir') !== 'cli') {
        const { loadConfig } = await import('../config.ts');
        o.dataDir = (await loadConfig(o.config)).dataDir;
      }
      const speed = parseSpeed(o.speed);
      const stepMs = Number(o.step);
      if (!Number.isInteger(stepMs) || stepMs <= 0) throw new AgentError('USAGE', `--step ${o.step}: expected a positive integer (ms)`);
      let decoders;
      if (o.capture && o.config) {
        const [{ loadConfig }, { adapterConfig }, { modbusReplayDecoders }] = await Promise.all([
          import('../config.ts'),
          import('../source-config.ts'),
          import('../../firmware-bridge/modbus-replay.ts'),
        ]);
        const cfg = await loadConfig(o.config);
        decoders = modbusReplayDecoders(cfg.sources.filter((s) => s.modbus).map((s) => adapterConfig(s, cfg) as Parameters<typeof modbusReplayDecoders>[0][number]));
      }
      const input = o.capture
        ? {
            kind: 'capture' as const,
            ...(decoders ? { decoders } : {}),
            file: o.capture,
            topic: o.topic,
            partitions: Number(o.partitions ?? 1),
            ...(o.from ? { from: parseBound(o.from, '--from', false) as { time: number } } : {}),
            ...(o.to ? { to: parseBound(o.to, '--to', false) as { time: number } } : {}),
          }
        : {
            kind: 'log' as const,
            dataDir: o.dataDir,
            topic: o.topic,
            ...(o.from ? { from: parseBound(o.from, '--from', true)! } : {}),
            ...(o.to ? { to: parseBound(o.to, '--to', true)! } : {}),
          };
      const [{ replay }, { openLogStore }] = await Promise.all([import('../replay.ts'), import('../../log-store/index.ts')]);
      const progress = progressReporter(process.stderr);
      const result = await replay({ input, ...(o.rules ? { rules: o.rules } : {}), speed, stepMs, onProgress: (p) => progress.update(p) });
      progress.done();
      if (o.into) {
        const target = await openLogStore({ dataDir: o.intoDataDir ?? o.dataDir });
        try {
          await target.ensureTopic(o.into, { partitions: 1 });
          for (let i = 0; i < result.rows.length; i += 5000) {
            const chunk = result.rows.slice(i, i + 5000);
            await target.appendBatch(
              o.into,
              chunk.map((r) => ({ key: r.key, value: typeof r.value === 'string' ? r.value : JSON.stringify(r.value), timestamp: r.timestamp, headers: { 'millstream.replay.topic': r.topic } })),
            );
          }
        } finally {
          await target.close();
        }
        process.stderr.write(`replay: ${result.records} records in, ${result.rows.length} rows appended to ${o.into}\n`);
        return;
      }
      const out = o.out === 'stdout' ? process.stdout : createWriteStream(o.out);
      for (const r of result.rows) out.write(`${JSON.stringify(r)}\n`);
      if (out !== process.stdout) await new Promise<void>((res) => (out as NodeJS.WritableStream).end(res));
      process.stderr.write(`replay: ${result.records} records in (${result.rules.length ? `rules ${result.rules.join(', ')}` : 'no rules'}), ${result.rows.length} rows out${result.deadLetters ? `, ${result.deadLetters} dead letters while decoding` : ''}\n`);
    });
}
