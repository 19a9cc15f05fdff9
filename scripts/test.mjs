#!/usr/bin/env node
// Runs the test suite with node's built-in runner over the TypeScript sources.
//   node scripts/test.mjs            unit tests (packages/*/test, launcher/test, workers/test) then e2e (test/)
//   node scripts/test.mjs --unit     unit tests only
//   node scripts/test.mjs --e2e      end-to-end tests only
//   node scripts/test.mjs FILE...    just these files
// Besides the spec output it keeps a TAP copy and writes out/test-summary.json (the counts the
// READMEs quote come from there: `node scripts/test-counts.mjs`). With CI=true a skipped test is a
// failure: a machine that cannot run a test must not turn the suite green by skipping it.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SOURCE_EXEC_ARGV } from './source-argv.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
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
mkdirSync(join(root, 'out'), { recursive: true });
const tapFile = join(root, 'out', `test-${process.pid}.tap`);
const r = spawnSync(
  process.execPath,
  [
    ...SOURCE_EXEC_ARGV,
    // Memory tests force a collection (global.gc) before they measure; the runner passes it on.
    '--expose-gc',
    '--test',
    `--test-concurrency=${concurrency}`,
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=tap',
    `--test-reporter-destination=${tapFile}`,
    ...selected,
  ],
  { stdio: 'inherit', cwd: root, env: { ...process.env, MTL_REPO_ROOT: root } },
);
let status = r.status ?? 1;
const tap = existsSync(tapFile) ? readFileSync(tapFile, 'utf8') : '';
rmSync(tapFile, { force: true });
const count = (key) => Number(new RegExp(`^# ${key} (\\d+)$`, 'm').exec(tap)?.[1] ?? NaN);
const summary = {
  files: selected.length,
  tests: count('tests'),
  passed: count('pass'),
  failed: count('fail'),
  skipped: count('skipped'),
  todo: count('todo'),
  cancelled: count('cancelled'),
  skips: [...tap.matchAll(/^\s*ok \d+ - (.*) # SKIP ?(.*)$/gm)].map((m) => ({ test: m[1], reason: m[2] })),
};
writeFileSync(join(root, 'out', 'test-summary.json'), JSON.stringify(summary, null, 2) + '\n');
if (process.env.CI === 'true' && summary.skipped > 0) {
  console.error(`CI=true: ${summary.skipped} test(s) skipped, which CI counts as failures:`);
  for (const s of summary.skips) console.error(`  ${s.test}: ${s.reason}`);
  status = status || 1;
}
if (Number.isNaN(summary.tests)) {
  console.error('the test runner reported no counts (a file failed to load, or a path does not exist)');
  status = status || 1;
} else console.log(`${summary.passed} passed, ${summary.failed} failed, ${summary.skipped} skipped`);
process.exit(status);
