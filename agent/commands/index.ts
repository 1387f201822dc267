import type { Command } from 'commander';
import { register as registerRun } from './run.ts';
import { register as registerConfig } from './config.ts';
import { register as registerLog } from './log.ts';
import { register as registerRules } from './rules.ts';
import { register as registerCapture } from './capture.ts';
import { register as registerReplicate } from './replicate.ts';
import { register as registerReplay } from './replay.ts';
import { register as registerStatus } from './status.ts';

/** Every command group, in help order. Add a group with one import and one entry. */
export const commandGroups: ReadonlyArray<(program: Command) => void> = [registerRun, registerConfig, registerLog, registerRules, registerCapture, registerReplicate, registerReplay, registerStatus];
