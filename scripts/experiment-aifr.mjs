#!/usr/bin/env node
// `npm run experiment:aifr`: the preregistered AIFR comparison of packages/eval/EXPERIMENTS.md (issue 19).
//   1. renders the 64 px benchmark (mtl-data synth --preset bench64) into data/bench64 when absent;
//   2. trains the separate age estimator (full recipe, seed 100) and checks the learnability threshold;
//   3. trains full / no-cda / cosface at seeds 0, 1, 2 (configs/experiment-aifr.yaml, mode=aifr) and
//      evaluates each on the held-out pairs (mtl-face eval);
//   4. prints the table: means with 95 % t-intervals over seeds, and the paired differences.
// One result.json per run under runs/experiment/<run>/; a run that has one is not run again, so an
// interrupted experiment continues where it stopped. `-- --table` only prints the table of what is done;
// `-- --out DIR --data DIR` put the runs and the set elsewhere; `-- --budget 3` trains every run 3× as long
// (amendment 1 of the protocol), into runs/experiment-x3; `-- --amendment 2` is that plus amendment 2's
// plain age estimator (age-s100, which then decides learnability) and seeds 3, 4, 5, in the same folder.
import { existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import {
  budgetOverrides,
  MTL_FACE,
  MTL_LAUNCH,
  ROOT,
  ensureData,
  jsonLines,
  pairedDifferences,
  parseArgs,
  pct,
  processorAndLoad,
  readJson,
  runNode,
  tInterval,
  writeJson,
} from './experiment-lib.mjs';

/** The compared variants. */
export const VARIANTS = {
  full: [],
  'no-cda': ['loss.fr_da=0'],
  cosface: ['loss.fr_age=0', 'loss.fr_da=0'],
};
/**
 * Amendment 2's plain age estimator: the same network trained for age alone (no identity loss, no CDA),
 * its age weight chosen on a validation split of the training identities (EXPERIMENTS.md).
 */
const AGE_WEIGHT = 0.004;
const AGE_ONLY = ['loss.fr_id=0', 'loss.fr_da=0', `loss.fr_age=${AGE_WEIGHT}`];
const overridesOf = (variant) => (variant === 'age' ? AGE_ONLY : VARIANTS[variant]);
export const ESTIMATOR = { name: 'estimator-s100', variant: 'full', seed: 100 };
export const PLAIN_ESTIMATOR = { name: 'age-s100', variant: 'age', seed: 100 };
const ESTIMATORS = [ESTIMATOR.name, PLAIN_ESTIMATOR.name];
/** Seeds 0–2 (the protocol); amendment 2 adds 3–5. */
export const seedsOf = (o) => (o.amendment >= 2 ? [0, 1, 2, 3, 4, 5] : [0, 1, 2]);
/** Learnability threshold (EXPERIMENTS.md, step 1), fixed before the estimator was trained. */
export const LEARNABLE = { accuracy: 0.5, withinOne: 0.85 };
/** Whether an estimator's age result (experiment-age.mjs) passes the learnability threshold. */
export const learnable = (age) => age.accuracy >= LEARNABLE.accuracy && age.withinOne >= LEARNABLE.withinOne;
const CONFIG = join(ROOT, 'configs/experiment-aifr.yaml');

export const runsOf = (o) => [
  ESTIMATOR,
  ...(o.amendment >= 2 ? [PLAIN_ESTIMATOR] : []),
  ...seedsOf(o).flatMap((seed) =>
    Object.keys(VARIANTS).map((variant) => ({ name: `${variant}-s${seed}`, variant, seed })),
  ),
];

/** Trains and evaluates one AIFR run unless its result.json exists; returns the result. */
export async function aifrRun(o, run) {
  const dir = join(o.out, run.name);
  const resultFile = join(dir, 'result.json');
  if (existsSync(resultFile)) return readJson(resultFile);
  // A finished training (train.json) is evaluated again; a half-trained one is moved aside, never resumed.
  const trained = join(dir, 'train.json');
  if (existsSync(dir) && !existsSync(trained)) renameSync(dir, `${dir}.unfinished-${Date.now()}`);
  const log = join(o.out, `${run.name}.log`);
  let before = processorAndLoad();
  let t0 = Date.now();
  if (existsSync(trained)) ({ before, t0 } = readJson(trained));
  else {
    console.log(`experiment: ${run.name} (${run.variant}, seed ${run.seed}) — training; log ${log}`);
    await runNode(
      [
        MTL_LAUNCH(),
        '--standalone',
        '--nproc-per-node',
        '2',
        CONFIG,
        `seed=${run.seed}`,
        `data.root=${o.data}`,
        `data.train_list=${join(o.data, 'train.txt')}`,
        `checkpoint_dir=${dir}`,
        ...budgetOverrides(CONFIG, o.budget),
        ...overridesOf(run.variant),
        ...o.set,
      ],
      log,
      4 * 3600e3,
    );
    writeJson(trained, { before, t0, finished: new Date().toISOString() });
  }
  const t1 = Date.parse(readJson(trained).finished);
  const evalOut = await runNode(
    [
      MTL_FACE(),
      'eval',
      '--checkpoint',
      dir,
      '--pairs',
      join(o.data, 'pairs.txt'),
      '--far',
      '0.01,0.1',
      '--json',
    ],
    log,
    3600e3,
  );
  const verification = jsonLines(evalOut).find((r) => r.kind === 'verification');
  if (!verification)
    throw new Error(`${run.name}: mtl-face eval printed no verification result (log: ${log})`);
  const age = jsonLines(
    await runNode([join(ROOT, 'scripts/experiment-age.mjs'), dir, join(o.data, 'test.txt')], log, 3600e3),
  ).find((r) => r.kind === 'age');
  const { foldThresholds: _thresholds, roc: _roc, ...v } = verification;
  const result = {
    ...run,
    config: 'configs/experiment-aifr.yaml',
    overrides: [...budgetOverrides(CONFIG, o.budget), ...overridesOf(run.variant), ...o.set],
    verification: v,
    age,
    trainSeconds: (t1 - t0) / 1000,
    evalSeconds: (Date.now() - t1) / 1000,
    before,
    after: processorAndLoad(),
    finished: new Date().toISOString(),
  };
  writeJson(resultFile, result);
  return result;
}

const tarAt = (r, far) => r.verification.tarAtFar.find((x) => x.far === far)?.tar ?? NaN;
const gap40 = (r) => r.verification.byAgeGap.find((b) => b.label === '40+')?.tar ?? NaN;

function interval(xs) {
  if (xs.length < 2) return xs.length === 1 ? `${pct(xs[0])} (1 seed)` : '—';
  const s = tInterval(xs);
  return `${pct(s.mean)} [${pct(s.lo)}, ${pct(s.hi)}]`;
}
const meanAuc = (xs) => (xs.length ? (xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(3) : '—');

/** The result table of the finished runs (Markdown). */
export function aifrTable(results) {
  const lines = [];
  for (const est of results.filter((r) => ESTIMATORS.includes(r.name) && r.age)) {
    lines.push(
      `Learnability (separate estimator ${est.name}, ${est.variant === 'age' ? 'age alone' : 'full recipe'}, on the ${est.age.faces} real held-out faces): ` +
        `exact group ${pct(est.age.accuracy)} %, within one group ${pct(est.age.withinOne)} %, ` +
        `per group ${est.age.perGroup.map((g) => pct(g.accuracy)).join(' / ')} % → ` +
        `${learnable(est.age) ? 'PASSES' : 'FAILS'} the threshold (≥ ${pct(LEARNABLE.accuracy)} %, ≥ ${pct(LEARNABLE.withinOne)} % within one)`,
      '',
    );
  }
  lines.push(
    '| run | accuracy ± fold std | AUC | TAR@FAR 1 % | TAR@FAR 10 % | same-pair TAR 40+ y | own age est. | train s |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  );
  for (const r of results)
    lines.push(
      `| ${r.name} | ${pct(r.verification.accuracyMean)} ± ${pct(r.verification.accuracyStd)} | ${r.verification.auc.toFixed(3)} | ` +
        `${pct(tarAt(r, 0.01))} | ${pct(tarAt(r, 0.1))} | ${pct(gap40(r))} | ${r.age ? pct(r.age.accuracy) : '—'} | ${r.trainSeconds.toFixed(0)} |`,
    );
  const comparison = results.filter((r) => !ESTIMATORS.includes(r.name));
  const by = (variant, f) =>
    new Map(comparison.filter((r) => r.variant === variant).map((r) => [r.seed, f(r)]));
  lines.push(
    '',
    '| variant | seeds | accuracy, mean [95 % t-interval] | TAR@FAR 1 % | TAR@FAR 10 % | AUC (mean) |',
    '| --- | --- | --- | --- | --- | --- |',
  );
  for (const v of Object.keys(VARIANTS)) {
    const acc = [...by(v, (r) => r.verification.accuracyMean).values()];
    lines.push(
      `| ${v} | ${acc.length} | ${interval(acc)} | ${interval([...by(v, (r) => tarAt(r, 0.01)).values()])} | ` +
        `${interval([...by(v, (r) => tarAt(r, 0.1)).values()])} | ${meanAuc([...by(v, (r) => r.verification.auc).values()])} |`,
    );
  }
  lines.push(
    '',
    '| difference (paired by seed) | seeds | accuracy, points [95 % t-interval] | TAR@FAR 1 %, points | verdict (accuracy) |',
    '| --- | --- | --- | --- | --- |',
  );
  for (const [a, b] of [
    ['full', 'cosface'],
    ['full', 'no-cda'],
    ['no-cda', 'cosface'],
  ]) {
    const d = pairedDifferences(
      by(a, (r) => r.verification.accuracyMean),
      by(b, (r) => r.verification.accuracyMean),
    );
    const dt = pairedDifferences(
      by(a, (r) => tarAt(r, 0.01)),
      by(b, (r) => tarAt(r, 0.01)),
    );
    let verdict = 'needs ≥ 2 seeds';
    if (d.length >= 2) {
      const s = tInterval(d);
      verdict = s.lo > 0 ? `${a} better` : s.hi < 0 ? `${b} better` : 'no effect shown (interval includes 0)';
    }
    lines.push(`| ${a} − ${b} | ${d.length} | ${interval(d)} | ${interval(dt)} | ${verdict} |`);
  }
  return lines.join('\n');
}

export function finishedResults(o) {
  return runsOf(o)
    .map((r) => join(o.out, r.name, 'result.json'))
    .filter((f) => existsSync(f))
    .map(readJson);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    const o = parseArgs(process.argv.slice(2));
    if (!o.table) {
      await ensureData(o.data, join(o.out, 'data.log'));
      for (const run of runsOf(o)) {
        const r = await aifrRun(o, run);
        if (ESTIMATORS.includes(run.name)) console.log(aifrTable([r]).split('\n')[0]);
      }
    }
    console.log(`\nexperiment:aifr — ${o.out}\n`);
    console.log(aifrTable(finishedResults(o)));
  } catch (e) {
    console.error(`experiment:aifr failed: ${e.message}`);
    process.exitCode = 1;
  }
}
