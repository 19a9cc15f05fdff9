// The statistics of the preregistered experiment (scripts/experiment-lib.mjs, packages/eval/EXPERIMENTS.md),
// checked against computations that share none of its code: Student's t density integrated numerically
// (Simpson) with Γ ratios from their recurrences, and a published table of t quantiles.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pairedDifferences, studentCdf, studentQuantile, tInterval } from '../scripts/experiment-lib.mjs';

/** Γ((ν+1)/2) / Γ(ν/2) for integer ν ≥ 1, by Γ(x+1) = xΓ(x) from Γ(1) = 1 and Γ(1/2) = √π. */
function gammaRatio(nu: number): number {
  const gamma = (x2: number): number => {
    // Γ(x2 / 2) for a positive integer x2
    let g = x2 % 2 === 0 ? 1 : Math.sqrt(Math.PI);
    for (let k = x2 % 2 === 0 ? 2 : 1; k < x2; k += 2) g *= k / 2;
    return g;
  };
  return gamma(nu + 1) / gamma(nu);
}

/** ∫₀^q of Student's t density with ν degrees of freedom (composite Simpson, 20,000 intervals, float64). */
function tMass(q: number, nu: number): number {
  const c = gammaRatio(nu) / Math.sqrt(nu * Math.PI);
  const pdf = (x: number): number => c * Math.pow(1 + (x * x) / nu, -(nu + 1) / 2);
  const n = 20000;
  const h = q / n;
  let s = pdf(0) + pdf(q);
  for (let i = 1; i < n; i++) s += (i % 2 === 1 ? 4 : 2) * pdf(i * h);
  return (s * h) / 3;
}

test('studentQuantile(0.975, ν) leaves 2.5 % in the upper tail of the integrated t density', () => {
  for (const nu of [1, 2, 3, 4, 5, 9, 29]) {
    const q = studentQuantile(0.975, nu);
    assert.ok(Math.abs(0.5 + tMass(q, nu) - 0.975) < 1e-6, `ν=${nu}: q=${q}, mass ${0.5 + tMass(q, nu)}`);
  }
  for (const [t, nu] of [
    [0.5, 2],
    [1.7, 3],
    [-2.2, 5],
  ] as const)
    assert.ok(Math.abs(studentCdf(t, nu) - (0.5 + Math.sign(t) * tMass(Math.abs(t), nu))) < 1e-7);
});

test('t quantiles agree with the published table (two-sided 95 %: 12.706, 4.303, 3.182, 2.262)', () => {
  for (const [nu, q] of [
    [1, 12.706],
    [2, 4.303],
    [3, 3.182],
    [9, 2.262],
  ] as const)
    assert.ok(Math.abs(studentQuantile(0.975, nu) - q) < 5e-4, `ν=${nu}: ${studentQuantile(0.975, nu)}`);
});

test('tInterval: mean ± t·s/√n with the sample (n−1) standard deviation, computed here by a float64 loop', () => {
  const xs = [0.712, 0.655, 0.69];
  const r = tInterval(xs);
  let m = 0;
  for (const x of xs) m += x / xs.length;
  let ss = 0;
  for (const x of xs) ss += (x - m) * (x - m);
  const s = Math.sqrt(ss / (xs.length - 1));
  assert.ok(Math.abs(r.mean - m) < 1e-15);
  assert.ok(Math.abs(r.sd - s) < 1e-15);
  // the half-width's t is the one whose central mass (integrated) is 95 %
  const t = (r.half * Math.sqrt(xs.length)) / s;
  assert.ok(Math.abs(2 * tMass(t, xs.length - 1) - 0.95) < 1e-6);
  assert.ok(Math.abs(r.lo - (m - r.half)) < 1e-15 && Math.abs(r.hi - (m + r.half)) < 1e-15);
  assert.throws(() => tInterval([0.5]), /at least 2/);
});

test('pairedDifferences pairs by seed, in seed order, and drops seeds only one side has', () => {
  const a = new Map([
    [2, 0.7],
    [0, 0.6],
    [1, 0.65],
  ]);
  const b = new Map([
    [0, 0.5],
    [2, 0.75],
    [5, 0.1],
  ]);
  const d = pairedDifferences(a, b);
  assert.equal(d.length, 2);
  assert.ok(Math.abs(d[0]! - 0.1) < 1e-12 && Math.abs(d[1]! + 0.05) < 1e-12);
});
