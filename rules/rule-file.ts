/**
 * Loading rule files: one `.sql` file or a folder of them → plans or
 * diagnostics (`file:line:col: message`, naming the offending token).
 *
 * A rules folder holds `*.sql` files (other files are ignored; sub-folders
 * are not read); results come in name order. Every file sees the sources
 * (`CREATE STREAM x (...) WITH (...)`) and derived streams declared in the
 * other files of the folder that plan without errors, exactly as a reload
 * of that one file would (`loadRuleFile(file, {catalog: catalogOf(files,
 * file)})`). Where two files define one name, the file planned first keeps
 * it (a file defining a stream is planned before the files reading it,
 * otherwise name order). FROM a name declared nowhere reads the topic of
 * that name (see plan.ts).
 *
 * A file with any diagnostic contributes no plans, so a runtime that
 * reloads a changed file keeps the file's previous rules running.
 *
 * The file system is injected (`RuleFs`, default `node:fs/promises`).
 */

import * as nodeFs from 'node:fs/promises';
import * as path from 'node:path';
import { parseRulesRecovering } from './parser.ts';
import type { ParsedStatement } from './ast.ts';
import { RulesError } from './errors.ts';
import { canonicalRuleName, planRuleText, formatDiagnostic, type Catalog, type Diagnostic, type Plan, type RuleFilePlan } from './plan.ts';

export { formatDiagnostic, planRuleText };
export type { Catalog, Diagnostic, RuleFilePlan };

/** The file-system calls the loader needs. */
export interface RuleFs {
  readFile(file: string, encoding: 'utf8'): Promise<string>;
  readdir(dir: string): Promise<string[]>;
}

export interface LoadOptions {
  /** Default: node:fs/promises. */
  fs?: RuleFs;
  /** Plans of the other files (see `catalogOf`). Default: empty. */
  catalog?: Catalog;
}

const defaultFs: RuleFs = { readFile: (f, e) => nodeFs.readFile(f, e), readdir: (d) => nodeFs.readdir(d) };

/** Whether a folder entry is a rule file. */
export function isRuleFile(name: string): boolean {
  return name.toLowerCase().endsWith('.sql') && !name.startsWith('.');
}

/**
 * The catalog of every plan in `files` except those of `excludeFile`: what a
 * reloaded file should be planned against (its own old plans excluded).
 */
export function catalogOf(files: Iterable<RuleFilePlan>, excludeFile?: string): Map<string, Plan> {
  const out = new Map<string, Plan>();
  for (const f of files) {
    if (f.file === excludeFile) continue;
    for (const p of [...f.sources, ...f.rules]) out.set(p.name, p);
  }
  return out;
}

/** Loads and plans one rule file. An unreadable file is a diagnostic (code RULES_IO) at 1:1, not an exception. */
export async function loadRuleFile(file: string, options: LoadOptions = {}): Promise<RuleFilePlan> {
  const fs = options.fs ?? defaultFs;
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException)?.code ?? 'EIO';
    return { file, sources: [], rules: [], diagnostics: [{ file, line: 1, col: 1, code: 'RULES_IO', message: `cannot read rule file: ${code}` }] };
  }
  return planRuleText(text, file, options.catalog);
}

/**
 * Loads every `*.sql` file of `folder` (paths in results are
 * `path.join(folder, name)`). Throws RulesError RULES_IO when the folder
 * cannot be listed.
 */
export async function loadRuleFolder(folder: string, options: { fs?: RuleFs } = {}): Promise<RuleFilePlan[]> {
  const fs = options.fs ?? defaultFs;
  let names: string[];
  try {
    names = (await fs.readdir(folder)).filter(isRuleFile).sort();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException)?.code ?? 'EIO';
    throw new RulesError('RULES_IO', `cannot read rules folder ${folder}: ${code}`, { file: folder, errno: code }, e);
  }
  const texts = new Map<string, string | Error>();
  for (const n of names) {
    const file = path.join(folder, n);
    try {
      texts.set(file, await fs.readFile(file, 'utf8'));
    } catch (e) {
      texts.set(file, e as Error);
    }
  }
  const parsed = new Map<string, ParsedStatement[]>();
  for (const [file, text] of texts) if (typeof text === 'string') parsed.set(file, parseRulesRecovering(text).statements);
  const plan = (file: string, catalog: Catalog): RuleFilePlan => {
    const text = texts.get(file)!;
    if (typeof text === 'string') return planRuleText(text, file, catalog);
    const code = (text as NodeJS.ErrnoException).code ?? 'EIO';
    return { file, sources: [], rules: [], diagnostics: [{ file, line: 1, col: 1, code: 'RULES_IO', message: `cannot read rule file: ${code}` }] };
  };
  // Pass 1, in dependency order: each file against the files planned before it (a broken file lends nothing).
  const first = new Map<string, RuleFilePlan>();
  for (const file of planningOrder([...texts.keys()], parsed)) first.set(file, plan(file, catalogOf(first.values())));
  // Pass 2: each file against every other file of pass 1, which is what a reload of that one file sees
  // (`catalogOf(files, file)`), so start-up and reload resolve names alike, even across file cycles.
  return [...texts.keys()].map((file) => plan(file, catalogOf(first.values(), file)));
}

/**
 * Files in dependency order: a file defining a stream (source or derived)
 * comes before the files whose FROM names it; otherwise (and within cycles,
 * which the planner then reports) name order.
 */
function planningOrder(files: readonly string[], parsed: ReadonlyMap<string, ParsedStatement[]>): string[] {
  const definedIn = new Map<string, string>();
  for (const f of files) {
    for (const p of parsed.get(f) ?? []) {
      const st = p.statement;
      if (st.kind !== 'SetStatement' && !definedIn.has(canonicalRuleName(st.name))) definedIn.set(canonicalRuleName(st.name), f);
    }
  }
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (f: string): void => {
    if (state.has(f)) return;
    state.set(f, 'visiting');
    for (const p of parsed.get(f) ?? []) {
      const st = p.statement;
      if (st.kind !== 'CreateAsSelect') continue;
      const dep = definedIn.get(canonicalRuleName(st.query.from.name));
      if (dep !== undefined && dep !== f) visit(dep);
    }
    state.set(f, 'done');
    order.push(f);
  };
  for (const f of files) visit(f);
  return order;
}

/**
 * Every diagnostic of every rule file in `folder`, in file order: what
 * `millstream rules check <folder>` prints (one `formatDiagnostic(d)` per
 * line) before exiting non-zero when the list is not empty. Throws RulesError
 * RULES_IO when the folder cannot be listed.
 */
export async function checkRules(folder: string, options: { fs?: RuleFs } = {}): Promise<Diagnostic[]> {
  const files = await loadRuleFolder(folder, options);
  return files.flatMap((f) => f.diagnostics);
}
