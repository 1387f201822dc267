import type { Command } from 'commander';
import { register as registerConfig } from './config.ts';
import { register as registerLog } from './log.ts';
import { register as registerRules } from './rules.ts';
import { register as registerRun } from './run.ts';

/** Every command group, in help order. Add a group with one import and one entry. */
export const commandGroups: ReadonlyArray<(program: Command) => void> = [registerRun, registerConfig, registerLog, registerRules];
