import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import type { Agent } from '../agent.ts';
import type { AgentConfig } from '../config.ts';
import type { DemoLine } from '../demo-line.ts';
import { AgentError } from '../errors.ts';

interface RunOptions {
  config?: string;
  demo?: boolean;
  dataDir?: string;
  httpPort?: string;
}

const repoFile = (rel: string) => fileURLToPath(new URL(`../../${rel}`, import.meta.url));

function headline(agent: Agent): string {
  const s = agent.status();
  const stored = s.topics.reduce((a, t) => a + t.endOffsetTotal, 0);
  const rate = s.topics.reduce((a, t) => a + t.ratePerS, 0);
  const connected = s.sources.filter((x) => x.connected).length;
  const lag = s.replication.partitions.reduce((a, p) => a + p.lagRecords, 0);
  return `${s.health.status}: ${connected}/${s.sources.length} devices connected, ${Math.round(rate)} records/s, ${stored} stored` +
    `${s.replication.enabled ? `, replication lag ${lag}` : ''}${s.health.reasons.length ? ` (${s.health.reasons[0]})` : ''}`;
}

export function register(program: Command): void {
  program
    .command('run')
    .description('run the agent (sources → log → rules → replication) until SIGTERM; SIGHUP reloads rules and live settings')
    .option('-c, --config <file>', 'config file (YAML); see docs/CONFIG.md')
    .option('--demo', 'run the built-in simulated widget line (no hardware needed)')
    .option('--data-dir <dir>', 'with --demo: where the demo keeps its log (then: millstream log tail widgets)', './data')
    .option('--http-port <port>', 'with --demo: status page port (0: any free port)', '8080')
    .action(async (opts: RunOptions) => {
      if (!opts.config && !opts.demo) throw new AgentError('USAGE', 'run: give --config <file> or --demo');
      // Loaded here, not at the top: every other command starts without the agent's modules.
      const [{ pino }, { createAgent }, { loadConfig, parseConfig }, { createNotifier }] = await Promise.all([
        import('pino'),
        import('../agent.ts'),
        import('../config.ts'),
        import('../systemd-notify.ts'),
      ]);
      // The demo's simulated broker (aedes) is a development dependency: a production install (npm ci --omit=dev) never loads it.
      const loadDemo = async () => {
        try {
          return await import('../demo-line.ts');
        } catch (err) {
          throw new AgentError('USAGE', `run --demo needs the development dependencies (run npm ci in the millstream folder): ${(err as Error).message}`, {}, err);
        }
      };
      let demo: DemoLine | null = null;
      let config: AgentConfig;
      const bootLogger = pino({ base: { pid: process.pid } });
      if (opts.demo) {
        const dataDir = resolve(opts.dataDir ?? './data');
        await mkdir(join(dataDir, 'run'), { recursive: true });
        const { startDemoLine, demoConfigYaml } = await loadDemo();
        demo = await startDemoLine({ runDir: join(dataDir, 'run'), logger: bootLogger });
        config = parseConfig(
          demoConfigYaml(demo, {
            dataDir,
            rulesDir: repoFile('systemd/rules'),
            schemaFile: repoFile('systemd/schemas/widget.schema.json'),
            httpPort: Number(opts.httpPort ?? 8080),
          }),
          '<demo>',
        );
      } else {
        config = await loadConfig(opts.config!);
      }
      const logger = pino({ level: config.log.level, base: { pid: process.pid, gateway: config.gateway.id } });
      const notifier = createNotifier({ env: process.env, pid: process.pid, logger });
      let agent = createAgent(config, { logger });
      let statusTimer: NodeJS.Timeout | undefined;
      let starting: Promise<void> = Promise.resolve();
      let stopping = false;

      // Signal handlers go in before start: a SIGTERM during a long start (log recovery, a slow device)
      // waits for the start to settle, then stops cleanly, instead of killing the process mid-write.
      const shutdown = async (signal: string) => {
        if (stopping) return;
        stopping = true;
        if (statusTimer) clearInterval(statusTimer);
        logger.info({ signal }, 'stopping');
        await notifier.stopping(`stopping on ${signal}`);
        const budget = setTimeout(() => {
          logger.error({ timeoutMs: config.shutdown.timeoutMs }, 'stop took longer than shutdown.timeoutMs; exiting');
          process.exit(1);
        }, config.shutdown.timeoutMs);
        try {
          await starting.catch(() => undefined);
          // The demo's devices stop first, so nothing they send is cut off half way; then the agent; then the simulated broker and PLC.
          await demo?.stopDevices();
          await agent.stop();
          await demo?.stop();
          logger.info({ ...agent.summary() }, 'stopped cleanly');
          notifier.close();
          clearTimeout(budget);
          // Let pino flush stdout, then exit.
          logger.flush?.();
          setImmediate(() => process.exit(0));
        } catch (err) {
          logger.error({ err }, 'stop failed');
          process.exit(1);
        }
      };
      process.on('SIGTERM', () => void shutdown('SIGTERM'));
      process.on('SIGINT', () => void shutdown('SIGINT'));
      process.on('SIGHUP', () => {
        if (stopping) return;
        void (async () => {
          await starting.catch(() => undefined);
          await notifier.reloading();
          try {
            const next = opts.config ? await loadConfig(opts.config) : undefined;
            const changes = await agent.reload(next);
            logger.info({ changes }, 'reloaded on SIGHUP');
          } catch (err) {
            logger.error({ err: (err as Error).message }, 'reload on SIGHUP refused; still running on the previous config');
          }
        })();
      });

      starting = (async () => {
        try {
          await agent.start();
        } catch (err) {
          if (opts.demo && (err as AgentError).code === 'HTTP_LISTEN' && config.http.port !== 0) {
            logger.warn({ port: config.http.port }, 'demo: status port in use; using a free port');
            const { demoConfigYaml } = await loadDemo();
            config = parseConfig(demoConfigYaml(demo!, { dataDir: config.dataDir, rulesDir: repoFile('systemd/rules'), schemaFile: repoFile('systemd/schemas/widget.schema.json'), httpPort: 0 }), '<demo>');
            agent = createAgent(config, { logger });
            await agent.start();
          } else {
            await demo?.stop();
            throw err;
          }
        }
      })();
      await starting;
      if (stopping) return;
      if (demo) {
        process.stdout.write(
          `\nmillstream demo line running: MQTT sensors at ${demo.mqttUrl}, Modbus TCP PLC on 127.0.0.1:${demo.modbusPort}` +
            `${demo.serialPath ? `, serial scale on ${demo.serialPath}` : ' (no serial scale: socat not installed)'}\n` +
            `status page: ${agent.url}   log: ${config.dataDir}   stop with Ctrl-C\n\n`,
        );
      }
      await notifier.ready(headline(agent));
      notifier.startWatchdog();
      statusTimer = setInterval(() => void notifier.status(headline(agent)), 10_000);
      statusTimer.unref();

      process.on('uncaughtException', (err) => {
        logger.fatal({ err }, 'uncaught exception; exiting (systemd restarts the service)');
        process.exit(1);
      });
    });
}
