import type { Command } from 'commander';

export function register(program: Command): void {
  const config = program.command('config').description('check the configuration file, print its reference');
  config
    .command('check <file>')
    .description('validate a config file as `run` would, without starting anything; exits 1 listing every problem')
    .action(async (file: string) => {
      const { loadConfig } = await import('../config.ts');
      const cfg = await loadConfig(file);
      process.stdout.write(
        `${file}: ok (gateway ${cfg.gateway.id}, ${cfg.sources.length} source(s), data in ${cfg.dataDir}` +
          `${cfg.rules.dir ? `, rules in ${cfg.rules.dir}` : ''}, replication ${cfg.replication.enabled ? 'on' : 'off'})\n`,
      );
    });
  config
    .command('reference')
    .description('print the configuration reference (Markdown) generated from the schema')
    .action(async () => {
      const { renderConfigReference } = await import('../config-reference.ts');
      process.stdout.write(renderConfigReference());
    });
}
