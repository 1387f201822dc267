/**
 * The `millstream` command. Each command group lives in `agent/commands/<group>.ts`
 * and exports `register(program)`; this file only assembles them, so groups
 * land independently.
 */
import { Command, CommanderError } from 'commander';
import { commandGroups } from './commands/index.ts';

/** How this process runs: compiled JavaScript from dist/ (`npm run build`) or the TypeScript sources through tsx (bin/entry.js decides). */
export const RUNTIME = import.meta.url.endsWith('.js') ? 'compiled, dist/' : 'sources through tsx';

export function buildProgram(): Command {
  const program = new Command('millstream')
    .description('Edge ingestion agent: device bridges → durable partitioned log → SQL rules → Kafka replication')
    .version(`0.1.0 (${RUNTIME})`)
    .showHelpAfterError();
  for (const register of commandGroups) register(program);
  return program;
}

try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  const e = err as Error & { code?: string };
  process.stderr.write(`millstream: ${e.code ? `${e.code}: ` : ''}${e.message}\n`);
  process.exit(1);
}
