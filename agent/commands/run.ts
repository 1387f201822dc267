import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('run')
    .description('run the agent (sources → log → rules → replication)')
    .option('-c, --config <file>', 'config file (YAML)')
    .option('--demo', 'run the built-in simulated widget line (no hardware needed)')
    .action(() => {
      process.stdout.write(
        'millstream run: the agent will read widget sensors (serial, Modbus, MQTT), append every reading to the\n' +
          'durable log in ./data, run the SQL rules and replicate to Kafka. The wiring lands with issue 6;\n' +
          'today the log store and its CLI are ready: try `millstream log --help`.\n',
      );
    });
}
