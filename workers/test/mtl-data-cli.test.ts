import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
// @ts-expect-error plain .mjs helper without types
import { SOURCE_EXEC_ARGV } from '../../scripts/source-argv.mjs';
import { writeRec } from '../../packages/data/test/recordio-writer.js';

const CLI = fileURLToPath(new URL('../src/mtl-data.ts', import.meta.url));
const run = (...args: string[]) =>
  spawnSync(process.execPath, [...(SOURCE_EXEC_ARGV as string[]), CLI, ...args], { encoding: 'utf8' });

test('mtl-data synth writes the set and reports it; piped progress is plain lines', async () => {
  const out = await mkdtemp(join(tmpdir(), 'mtl-cli-'));
  const r = run(
    'synth',
    '--out',
    out,
    '--identities',
    '6',
    '--images-per-identity',
    '3',
    '--size',
    '16',
    '--seed',
    '4',
    '--threads',
    '1',
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /synth: 18 images \(4 train \/ 2 test identities\)/);
  assert.match(r.stderr, /^synth: 6\/6 \(100%\)$/m);
  assert.equal((await readFile(join(out, 'all.txt'), 'utf8')).trim().split('\n').length, 18);
});

test('mtl-data: bad arguments and missing inputs fail with a message naming them', async () => {
  const bad = run('synth', '--out', '/tmp/x', '--size', 'big');
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--size must be an integer ≥ 16, got "big"/);
  const dir = await mkdtemp(join(tmpdir(), 'mtl-cli-'));
  const rec = run('from-rec', dir, '--out', join(dir, 'o'));
  assert.equal(rec.status, 1);
  assert.match(rec.stderr, new RegExp(`mtl-data: ${join(dir, 'train.rec')}: cannot open`));
});

test('mtl-data from-rec: a header record announcing no images fails with one line and exit code 1', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mtl-cli-'));
  await writeRec(dir, [0, 1], { headerEnd: 0 });
  const r = run('from-rec', dir, '--out', join(dir, 'o'));
  assert.equal(r.status, 1, r.stdout);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(
    r.stderr,
    /^mtl-data: .*train\.rec: byte offset 0: record 0 \(the header\) says the image records end at 0/,
  );
  assert.doesNotMatch(r.stdout, /images/);
  assert.equal(existsSync(join(dir, 'o')), false);
});
