import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { verify, foldBounds } from '../src/verification.js';

test('a hand-checked 2-fold case: thresholds chosen on the other fold, accuracy, ROC, AUC and TAR@FAR', () => {
  // fold A: 0.9 same, 0.2 diff, 0.6 same, 0.5 diff;  fold B: 0.8 same, 0.3 diff, 0.4 same, 0.7 diff
  const sims = [0.9, 0.2, 0.6, 0.5, 0.8, 0.3, 0.4, 0.7];
  const same = [true, false, true, false, true, false, true, false];
  const r = verify(sims, same, { folds: 2, fars: [0.25, 1e-3] });
  // On B the best threshold is 0.35 (3 of 4 right; 0.75 ties it, the lower wins); A tested with it: 0.5 is accepted wrongly.
  // On A the threshold 0.55 separates perfectly; B tested with it: 0.4 rejected and 0.7 accepted wrongly.
  assert.deepEqual(
    r.foldThresholds.map((t) => +t.toFixed(6)),
    [0.35, 0.55],
  );
  assert.deepEqual(r.foldAccuracies, [0.75, 0.5]);
  assert.equal(r.accuracyMean, 0.625);
  assert.equal(r.accuracyStd, 0.125);
  assert.deepEqual(Array.from(r.predictions), [1, 0, 1, 1, 1, 0, 0, 1]);
  assert.ok(Math.abs(r.bestThreshold - 0.35) < 1e-12);
  assert.equal(r.bestAccuracy, 0.75);
  // 13 of the 16 (same, different) combinations are ordered correctly
  assert.ok(Math.abs(r.auc - 13 / 16) < 1e-12);
  assert.equal(r.roc[0]!.tpr, 0);
  assert.equal(r.roc.at(-1)!.fpr, 1);
  const [q, strict] = r.tarAtFar;
  assert.equal(q!.tar, 0.75);
  assert.ok(Math.abs(q!.threshold - 0.55) < 1e-12);
  assert.equal(q!.achievedFar, 0.25);
  assert.equal(q!.resolvable, true);
  // with 4 different pairs FAR 1e-3 means FAR 0: the threshold must clear 0.7, leaving 0.8 and 0.9
  assert.equal(strict!.tar, 0.5);
  assert.equal(strict!.achievedFar, 0);
  assert.equal(strict!.resolvable, false);
});

test('folds are contiguous and the first n mod k get one extra pair, like sklearn KFold', () => {
  assert.deepEqual(
    foldBounds(23, 10).map(([a, b]) => b - a),
    [3, 3, 3, 2, 2, 2, 2, 2, 2, 2],
  );
  assert.deepEqual(foldBounds(6000, 10)[3], [1800, 2400]);
  assert.throws(() => foldBounds(5, 10), /5 pairs cannot be split into 10 folds/);
});

test('bad input is named', () => {
  assert.throws(() => verify([0.1, 0.2], [true]), /2 similarities but 1/);
  assert.throws(() => verify([0.1, NaN, 0.3, 0.4], [1, 0, 1, 0], { folds: 2 }), /pair 1 is NaN/);
  assert.throws(() => verify([0.1, 0.2, 0.3, 0.4], [1, 1, 1, 1], { folds: 2 }), /need both same/);
});

// ---- brute-force reference: every candidate threshold, every pair counted directly ----
function candidates(values: number[]): number[] {
  const d = [...new Set(values)].sort((a, b) => a - b);
  const out = [d[0]! - 1];
  for (let i = 1; i < d.length; i++) out.push((d[i - 1]! + d[i]!) / 2);
  out.push(d.at(-1)! + 1);
  return out;
}
function accuracyAt(sims: number[], same: boolean[], idx: number[], t: number): number {
  return idx.filter((i) => sims[i]! > t === same[i]).length / idx.length;
}
function reference(sims: number[], same: boolean[], k: number, grid?: number[]) {
  const n = sims.length;
  const size = (f: number) => Math.floor(n / k) + (f < n % k ? 1 : 0);
  let start = 0;
  const accs: number[] = [];
  const ths: number[] = [];
  for (let f = 0; f < k; f++) {
    const test = Array.from({ length: size(f) }, (_, j) => start + j);
    const train = Array.from({ length: n }, (_, i) => i).filter((i) => !test.includes(i));
    const cands = grid ? [...grid].sort((a, b) => a - b) : candidates(train.map((i) => sims[i]!));
    let best = cands[0]!;
    for (const t of cands)
      if (accuracyAt(sims, same, train, t) > accuracyAt(sims, same, train, best)) best = t;
    ths.push(best);
    accs.push(accuracyAt(sims, same, test, best));
    start += size(f);
  }
  const mean = accs.reduce((a, b) => a + b, 0) / k;
  const std = Math.sqrt(accs.map((a) => (a - mean) ** 2).reduce((a, b) => a + b, 0) / k);
  return { accs, ths, mean, std };
}
function referenceTar(sims: number[], same: boolean[], far: number) {
  const P = same.filter(Boolean).length;
  const N = same.length - P;
  let tar = 0;
  let achieved = 0;
  for (const t of candidates(sims).reverse()) {
    const fpr = sims.filter((s, i) => !same[i] && s > t).length / N;
    const tpr = sims.filter((s, i) => same[i] && s > t).length / P;
    if (fpr <= far && tpr > tar) {
      tar = tpr;
      achieved = fpr;
    }
  }
  return { tar, achieved };
}
function mannWhitney(sims: number[], same: boolean[]): number {
  let s = 0;
  let c = 0;
  sims.forEach((a, i) => {
    if (!same[i]) return;
    sims.forEach((b, j) => {
      if (same[j]) return;
      s += a > b ? 1 : a === b ? 0.5 : 0;
      c++;
    });
  });
  return s / c;
}

const pairsArb = fc
  .integer({ min: 2, max: 10 })
  .chain((k) =>
    fc.record({
      k: fc.constant(k),
      // a coarse grid of values makes ties (equal similarities) common
      rows: fc.array(fc.tuple(fc.integer({ min: -20, max: 20 }), fc.boolean()), {
        minLength: k,
        maxLength: 60,
      }),
    }),
  )
  .filter(({ rows }) => rows.some((r) => r[1]) && rows.some((r) => !r[1]));

test('random similarity sets: k-fold accuracy, thresholds, TAR@FAR and AUC match a brute-force reference', () => {
  fc.assert(
    fc.property(pairsArb, fc.constantFrom(0.05, 0.2, 0.5), ({ k, rows }, far) => {
      const sims = rows.map((r) => r[0] / 20);
      const same = rows.map((r) => r[1]);
      const r = verify(sims, same, { folds: k, fars: [far] });
      const ref = reference(sims, same, k);
      assert.deepEqual(r.foldAccuracies, ref.accs);
      for (let f = 0; f < k; f++) assert.ok(Math.abs(r.foldThresholds[f]! - ref.ths[f]!) < 1e-12);
      assert.ok(Math.abs(r.accuracyMean - ref.mean) < 1e-12);
      assert.ok(Math.abs(r.accuracyStd - ref.std) < 1e-12);
      const rt = referenceTar(sims, same, far);
      assert.equal(r.tarAtFar[0]!.tar, rt.tar);
      assert.equal(r.tarAtFar[0]!.achievedFar, rt.achieved);
      assert.ok(Math.abs(r.auc - mannWhitney(sims, same)) < 1e-12);
    }),
    { numRuns: 200, seed: 7 },
  );
});

test('a fixed threshold grid (insightface style) gives the reference result on that grid', () => {
  const grid = Array.from({ length: 41 }, (_, i) => -1 + i * 0.05);
  fc.assert(
    fc.property(pairsArb, ({ k, rows }) => {
      const sims = rows.map((r) => r[0] / 20 + 0.013);
      const same = rows.map((r) => r[1]);
      const r = verify(sims, same, { folds: k, thresholds: grid });
      const ref = reference(sims, same, k, grid);
      assert.deepEqual(r.foldAccuracies, ref.accs);
      assert.deepEqual(r.foldThresholds, ref.ths);
    }),
    { numRuns: 100, seed: 11 },
  );
});
