#!/usr/bin/env node
// Runs the test suite with node's built-in runner over the TypeScript sources.
//   node scripts/test.mjs            unit tests (packages/*/test, launcher/test, workers/test) then e2e (test/)
//   node scripts/test.mjs --unit     unit tests only
//   node scripts/test.mjs --e2e      end-to-end tests only
//   node scripts/test.mjs FILE...    just these files
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { SOURCE_EXEC_ARGV } from './source-argv.mjs';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const flags = new Set(args.filter((a) => a.startsWith('--')));
const files = args.filter((a) => !a.startsWith('--'));

function collect(dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    if (name === 'node_modules' || name === 'fixtures') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...collect(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const unitDirs = [
  ...readdirSync(join(root, 'packages')).map((p) => join(root, 'packages', p, 'test')),
  join(root, 'launcher', 'test'),
  join(root, 'workers', 'test'),
];
let selected = files;
if (selected.length === 0) {
  const unit = unitDirs.flatMap(collect);
  const e2e = collect(join(root, 'test'));
  selected = flags.has('--unit') ? unit : flags.has('--e2e') ? e2e : [...unit, ...e2e];
}
if (selected.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const concurrency = process.env.MTL_TEST_CONCURRENCY ?? '1';
const r = spawnSync(
  process.execPath,
  [...SOURCE_EXEC_ARGV, '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...selected],
  { stdio: 'inherit', cwd: root, env: { ...process.env, MTL_REPO_ROOT: root } },
);
process.exit(r.status ?? 1);
