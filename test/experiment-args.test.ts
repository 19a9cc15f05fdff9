// The experiment commands' arguments (scripts/experiment-lib.mjs) and the runs each protocol stage trains
// (scripts/experiment-aifr.mjs, packages/eval/EXPERIMENTS.md): amendment 2 adds runs to amendment 1's folder
// without changing any run amendment 1 made.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from '../scripts/experiment-lib.mjs';
import { runsOf } from '../scripts/experiment-aifr.mjs';

const out = mkdtempSync(join(tmpdir(), 'experiment-args-'));
process.on('exit', () => rmSync(out, { recursive: true, force: true }));

test('--amendment 2 and 3 run at budget 3, refuse another budget, and name no other amendment', () => {
  const o = parseArgs(['--amendment', '2', '--out', out]);
  assert.equal(o.budget, 3);
  assert.equal(o.amendment, 2);
  assert.equal(parseArgs(['--amendment', '2', '--budget', '3', '--out', out]).budget, 3);
  assert.throws(() => parseArgs(['--amendment', '2', '--budget', '2', '--out', out]), /--budget 3/);
  assert.throws(() => parseArgs(['--amendment', '1', '--out', out]), /2 or 3/);
  assert.throws(() => parseArgs(['--amendment']), /2 or 3/);
  assert.equal(parseArgs(['--amendment', '3', '--out', out]).budget, 3);
  assert.throws(
    () => parseArgs(['--amendment', '3', '--budget', '1', '--out', out]),
    /--amendment 3 runs at --budget 3/,
  );
});

test('amendment 2 keeps every run of amendment 1 by name, adds the plain estimator and seeds 3–5', () => {
  const a1 = runsOf(parseArgs(['--budget', '3', '--out', out]));
  const a2 = runsOf(parseArgs(['--amendment', '2', '--out', out]));
  assert.equal(a1.length, 1 + 3 * 3);
  assert.equal(a2.length, 2 + 3 * 6);
  for (const r of a1)
    assert.deepEqual(
      a2.find((x) => x.name === r.name),
      r,
      r.name,
    );
  const added = a2.filter((r) => !a1.some((x) => x.name === r.name));
  assert.deepEqual(
    added.map((r) => r.name).sort(),
    ['age-s100', ...['cosface', 'full', 'no-cda'].flatMap((v) => [3, 4, 5].map((s) => `${v}-s${s}`))].sort(),
  );
});
