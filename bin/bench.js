#!/usr/bin/env node
// `npm run bench`: the benchmark runner, compiled (dist/) when current, as the agent runs.
import { runEntry } from './entry.js';

await runEntry('bench/run.ts');
