#!/usr/bin/env node
// Runs a TypeScript entry point from source: `node scripts/run-ts.mjs file.ts [args...]`.
import { spawn } from 'node:child_process';
import { SOURCE_EXEC_ARGV } from './source-argv.mjs';

const [file, ...args] = process.argv.slice(2);
if (!file) {
  console.error('usage: run-ts.mjs <file.ts> [args...]');
  process.exit(2);
}
const child = spawn(process.execPath, [...SOURCE_EXEC_ARGV, file, ...args], { stdio: 'inherit' });
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + 1 : 1)));
