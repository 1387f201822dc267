/**
 * Child process of the rules crash test: opens the log in `dataDir`, runs
 * the rules of `sql` (each until it has read its whole input, in order) with
 * checkpoints in `stateDir`, prints `ready` once the rules are open,
 * `recovered` when it completes a batch a killed run left half done, and
 * `done` at the end, then exits 0. The parent SIGKILLs it at random moments.
 *
 *   node --import tsx rules-crash-child.ts '<json {dataDir, stateDir, sql, batchRecords}>'
 */
import { openLogStore } from '../../log-store/index.ts';
import { planRuleText } from '../../rules/rule-file.ts';
import { createRuleRunner } from '../../rules/rule-runner.ts';

const args = JSON.parse(process.argv[2]!) as { dataDir: string; stateDir: string; sql: string; batchRecords: number };
// Only the recovery of an interrupted batch is reported (one `recovered` line), so the parent can count them.
const quiet = {
  debug() {},
  info() {},
  warn(_obj: object, msg?: string) {
    if (msg?.startsWith('completing a batch')) process.stdout.write('recovered\n');
  },
  error() {},
};
const log = await openLogStore({ dataDir: args.dataDir, minFreeBytes: 0, retentionCheckIntervalMs: 0 });
const plan = planRuleText(args.sql, 'crash.sql');
if (plan.diagnostics.length) throw new Error(JSON.stringify(plan.diagnostics));
process.stdout.write('ready\n');
for (const rule of plan.rules) {
  const runner = createRuleRunner({
    plan: rule,
    log,
    stateDir: args.stateDir,
    clock: { now: () => Date.now() },
    timers: { setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout) },
    logger: quiet,
    idleCloseMs: 0,
    batchRecords: args.batchRecords,
  });
  await runner.drain();
  await runner.closeAllWindows();
  await runner.stop();
}
await log.close();
process.stdout.write('done\n');
