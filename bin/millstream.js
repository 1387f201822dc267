#!/usr/bin/env node
// Entry point of the `millstream` command: the compiled agent in dist/ when
// it is current, else the TypeScript sources through tsx (see entry.js).
import { runEntry } from './entry.js';

await runEntry('agent/cli.ts');
