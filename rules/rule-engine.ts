/**
 * The rule engine: every `*.sql` file of a rules folder, each rule run by its
 * own `RuleRunner`, the folder watched so that an edited file is reloaded
 * without restarting the process.
 *
 * Reload semantics, per file:
 *  - The file is planned against the other files' plans. Any diagnostic
 *    (`file:line:col: message`) is logged and kept in `status().problems`;
 *    the file's rules that were running keep running on their old definition.
 *  - A rule whose statement text and settings are unchanged keeps running.
 *  - A changed rule is stopped and started again on the new definition. Its
 *    checkpoint is reused when the state layout (`stateSignature`: source,
 *    GROUP BY, window, aggregates) is the same; otherwise the runner logs
 *    that it starts fresh state.
 *  - A rule that disappeared from the file (or a deleted file) is stopped;
 *    its checkpoint file stays in `stateDir`.
 * Reloads run one at a time, in the order the changes were seen.
 */
import { watch as fsWatch, type FSWatcher } from 'node:fs';
import { mkdir, readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Clock, LogStoreApi, Logger, Timers } from '../log-store/index.ts';
import type { DerivedPlan, Diagnostic } from './plan.ts';
import { formatDiagnostic } from './plan.ts';
import { catalogOf, isRuleFile, loadRuleFile, loadRuleFolder, type RuleFilePlan } from './rule-file.ts';
import { createRuleRunner, type RuleRunner, type RuleStatus } from './rule-runner.ts';

export interface RuleEngineOptions {
  log: LogStoreApi;
  /** Folder of `*.sql` rule files (not recursive). */
  rulesDir: string;
  /** Folder of the rules' SQLite checkpoints; created if missing. */
  stateDir: string;
  clock: Clock;
  timers: Timers;
  logger: Logger;
  /** Close open windows after this long without input (wall clock, ms). Default 60000; 0 disables. */
  idleCloseMs?: number;
  /** Watch the folder and reload changed files. Default true. */
  watch?: boolean;
  /** Wait this long after the last change event of a file before reloading it (ms). Default 200. */
  debounceMs?: number;
  /** Records read per input partition per batch (see RuleRunnerOptions). Default 5000. */
  batchRecords?: number;
  /** Default true; false: scratch checkpoints and outputs without fsync, for throw-away sandboxes (see RuleRunnerOptions.durable). */
  durable?: boolean;
}

export interface RuleEngineStatus {
  running: boolean;
  rules: RuleStatus[];
  /** Current problems of the folder's files, `file:line:col: message`. */
  problems: string[];
}

export interface RuleEngine {
  /** Loads the folder, starts every rule and the watcher. Idempotent. */
  start(): Promise<void>;
  /** Stops the watcher and every rule (reverse start order). Idempotent. */
  stop(): Promise<void>;
  /** Reloads one file (path inside rulesDir), or every file of the folder. Resolves when done. */
  reload(file?: string): Promise<void>;
  status(): RuleEngineStatus;
}

interface Running {
  runner: RuleRunner;
  plan: DerivedPlan;
  identity: string;
}

/** What makes a rule "unchanged": its statement text, settings and source. */
function identityOf(plan: DerivedPlan): string {
  return JSON.stringify([plan.origin.sql, plan.settings, plan.source.topic, plan.source.timestampField]);
}

export function createRuleEngine(options: RuleEngineOptions): RuleEngine {
  const { log, rulesDir, stateDir, logger, timers } = options;
  const debounceMs = options.debounceMs ?? 200;
  /** Last good plan of each file (a broken reload keeps the previous one). */
  const files = new Map<string, RuleFilePlan>();
  const problems = new Map<string, Diagnostic[]>();
  /** Running rules by name, in start order. */
  const running = new Map<string, Running>();
  const debounce = new Map<string, unknown>();
  let watcher: FSWatcher | null = null;
  let started = false;
  let queue: Promise<void> = Promise.resolve();

  function enqueue(fn: () => Promise<void>): Promise<void> {
    const p = queue.then(fn, fn);
    queue = p.catch((err) => logger.error({ err }, 'rule reload failed'));
    return p;
  }

  function report(file: string, diagnostics: readonly Diagnostic[]): void {
    if (diagnostics.length) {
      problems.set(file, [...diagnostics]);
      for (const d of diagnostics) logger.error({ file: d.file, line: d.line, col: d.col, code: d.code }, formatDiagnostic(d));
    } else problems.delete(file);
  }

  async function startRule(plan: DerivedPlan): Promise<void> {
    const runner = createRuleRunner({
      plan,
      log,
      stateDir,
      clock: options.clock,
      timers,
      logger,
      idleCloseMs: options.idleCloseMs ?? 60_000,
      batchRecords: options.batchRecords ?? 5000,
      durable: options.durable ?? true,
    });
    running.set(plan.name, { runner, plan, identity: identityOf(plan) });
    await runner.start();
    logger.info({ rule: plan.name, file: plan.origin.file, output: plan.outputTopic }, 'rule started');
  }

  async function stopRule(name: string, why: string): Promise<void> {
    const r = running.get(name);
    if (!r) return;
    running.delete(name);
    await r.runner.stop();
    logger.info({ rule: name, file: r.plan.origin.file }, why);
  }

  /**
   * Brings the running rules of `file` in line with `plan` (a plan without
   * diagnostics, or null: file gone). Returns whether a rule went away (then
   * files that failed on a duplicate name may load now).
   */
  async function apply(file: string, plan: RuleFilePlan | null): Promise<boolean> {
    const wanted = new Map((plan?.rules ?? []).map((p) => [p.name, p]));
    let removed = false;
    for (const [name, r] of [...running]) {
      if (r.plan.origin.file !== file) continue;
      const next = wanted.get(name);
      if (!next) {
        await stopRule(name, 'rule removed from its file: stopped');
        removed = true;
      }
      else if (identityOf(next) !== r.identity) await stopRule(name, 'rule definition changed: restarting it');
    }
    for (const p of plan?.rules ?? []) {
      const r = running.get(p.name);
      if (r && r.plan.origin.file !== file) {
        logger.error({ rule: p.name, file, other: r.plan.origin.file }, 'a rule of this name already runs from another file; not started');
        continue;
      }
      if (!r) await startRule(p);
    }
    if (plan) files.set(file, plan);
    else files.delete(file);
    return removed;
  }

  /** Retries the files that have problems (after a rule went away, e.g. moved to another file). */
  async function retryProblemFiles(except: string): Promise<void> {
    for (const f of [...problems.keys()]) if (f !== except) await reloadFile(f, false);
  }

  async function reloadFile(file: string, retryOthers = true): Promise<void> {
    const exists = await stat(file).then(
      (s) => s.isFile(),
      () => false,
    );
    if (!exists) {
      report(file, []);
      if (files.has(file)) {
        logger.info({ file }, 'rule file removed: stopping its rules');
        if ((await apply(file, null)) && retryOthers) await retryProblemFiles(file);
      }
      return;
    }
    const plan = await loadRuleFile(file, { catalog: catalogOf(files.values(), file) });
    report(file, plan.diagnostics);
    if (plan.diagnostics.length) {
      logger.warn({ file, keptRules: [...running.values()].filter((r) => r.plan.origin.file === file).map((r) => r.plan.name) }, 'rule file has errors: its previous rules keep running');
      return;
    }
    logger.info({ file, rules: plan.rules.map((r) => r.name) }, 'rule file loaded');
    if ((await apply(file, plan)) && retryOthers) await retryProblemFiles(file);
  }

  function onWatch(_event: string, filename: string | Buffer | null): void {
    if (!filename) {
      void engine.reload();
      return;
    }
    const name = basename(filename.toString());
    if (!isRuleFile(name)) return;
    const file = join(rulesDir, name);
    const prev = debounce.get(file);
    if (prev !== undefined) timers.clearTimeout(prev);
    debounce.set(
      file,
      timers.setTimeout(() => {
        debounce.delete(file);
        if (started) void enqueue(() => reloadFile(file));
      }, debounceMs),
    );
  }

  const engine: RuleEngine = {
    async start() {
      if (started) return;
      started = true;
      await mkdir(stateDir, { recursive: true });
      await enqueue(async () => {
        const plans = await loadRuleFolder(rulesDir);
        for (const p of plans) {
          report(p.file, p.diagnostics);
          if (!p.diagnostics.length) await apply(p.file, p);
        }
      });
      if (options.watch ?? true) {
        watcher = fsWatch(rulesDir, { persistent: false }, onWatch);
        watcher.on('error', (err) => logger.error({ err, dir: rulesDir }, 'watching the rules folder failed'));
      }
    },
    async stop() {
      if (!started) return;
      started = false;
      watcher?.close();
      watcher = null;
      for (const h of debounce.values()) timers.clearTimeout(h);
      debounce.clear();
      await queue;
      for (const name of [...running.keys()].reverse()) await stopRule(name, 'rule stopped');
    },
    reload(file) {
      return enqueue(async () => {
        if (file) return reloadFile(file);
        const names = (await readdir(rulesDir)).filter(isRuleFile).sort();
        const all = new Set([...names.map((n) => join(rulesDir, n)), ...files.keys(), ...problems.keys()]);
        for (const f of all) await reloadFile(f);
      });
    },
    status() {
      return {
        running: started,
        rules: [...running.values()].map((r) => r.runner.status()),
        problems: [...problems.values()].flat().map(formatDiagnostic),
      };
    },
  };
  return engine;
}
