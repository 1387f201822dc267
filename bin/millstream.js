#!/usr/bin/env node
// Entry point of the `millstream` command. The sources are TypeScript; tsx
// compiles them on load (Node 20 cannot strip types itself), so the command,
// the tests that spawn it and the benchmarks all run the same files.
import { register } from 'tsx/esm/api';

register();
await import('../agent/cli.ts');
