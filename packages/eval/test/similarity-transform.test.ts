import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  ARCFACE_TEMPLATE_112,
  applyTransform,
  estimateSimilarity,
  invertTransform,
  warpAffine,
  type Point,
} from '../src/align/similarity-transform.js';

const close = (a: number, b: number, tol = 1e-6) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

test('a known rotation, scale and shift of the template is recovered exactly', () => {
  fc.assert(
    fc.property(
      fc.double({ min: -Math.PI, max: Math.PI, noNaN: true }),
      fc.double({ min: 0.1, max: 10, noNaN: true }),
      fc.double({ min: -500, max: 500, noNaN: true }),
      fc.double({ min: -500, max: 500, noNaN: true }),
      (theta, s, tx, ty) => {
        const t = { a: s * Math.cos(theta), b: s * Math.sin(theta), tx, ty };
        const src = ARCFACE_TEMPLATE_112.map((p) => applyTransform(invertTransform(t), p));
        const est = estimateSimilarity(src, ARCFACE_TEMPLATE_112);
        close(est.a, t.a, 1e-7 * s);
        close(est.b, t.b, 1e-7 * s);
        close(est.tx, t.tx, 1e-6);
        close(est.ty, t.ty, 1e-6);
      },
    ),
    { numRuns: 200, seed: 5 },
  );
});

/** Independent reference: the 4-parameter linear least squares solved through its 4×4 normal equations. */
function normalEquations(src: readonly Point[], dst: readonly Point[]): number[] {
  // unknowns (a, b, tx, ty): rows [x, −y, 1, 0] → u and [y, x, 0, 1] → v
  const A: number[][] = [];
  const y: number[] = [];
  src.forEach(([px, py], i) => {
    A.push([px, -py, 1, 0]);
    y.push(dst[i]![0]);
    A.push([py, px, 0, 1]);
    y.push(dst[i]![1]);
  });
  const M = [0, 1, 2, 3].map((r) => [0, 1, 2, 3].map((c) => A.reduce((s, row) => s + row[r]! * row[c]!, 0)));
  const rhs = [0, 1, 2, 3].map((r) => A.reduce((s, row, k) => s + row[r]! * y[k]!, 0));
  // Gaussian elimination with partial pivoting
  for (let c = 0; c < 4; c++) {
    let p = c;
    for (let r = c + 1; r < 4; r++) if (Math.abs(M[r]![c]!) > Math.abs(M[p]![c]!)) p = r;
    [M[c], M[p]] = [M[p]!, M[c]!];
    [rhs[c], rhs[p]] = [rhs[p]!, rhs[c]!];
    for (let r = 0; r < 4; r++) {
      if (r === c) continue;
      const f = M[r]![c]! / M[c]![c]!;
      for (let k = 0; k < 4; k++) M[r]![k]! -= f * M[c]![k]!;
      rhs[r]! -= f * rhs[c]!;
    }
  }
  return [0, 1, 2, 3].map((r) => rhs[r]! / M[r]![r]!);
}

test('noisy landmarks: the closed form equals the least-squares solution of the normal equations', () => {
  const pt = fc.tuple(
    fc.double({ min: 0, max: 400, noNaN: true }),
    fc.double({ min: 0, max: 400, noNaN: true }),
  );
  fc.assert(
    fc.property(fc.array(fc.tuple(pt, pt), { minLength: 3, maxLength: 8 }), (pairs) => {
      const src = pairs.map((p) => p[0] as Point);
      const dst = pairs.map((p) => p[1] as Point);
      const spread = src.reduce((s, p) => s + (p[0] - src[0]![0]) ** 2 + (p[1] - src[0]![1]) ** 2, 0);
      fc.pre(spread > 1);
      const est = estimateSimilarity(src, dst);
      const [a, b, tx, ty] = normalEquations(src, dst);
      close(est.a, a!, 1e-6);
      close(est.b, b!, 1e-6);
      close(est.tx, tx!, 1e-4);
      close(est.ty, ty!, 1e-4);
    }),
    { numRuns: 200, seed: 9 },
  );
  assert.throws(
    () =>
      estimateSimilarity(
        [
          [1, 1],
          [1, 1],
        ],
        [
          [0, 0],
          [1, 1],
        ],
      ),
    /source points all coincide/,
  );
});

test('warping by a whole-pixel shift moves the pixels; outside the source is black', () => {
  const w = 5;
  const src = Uint8Array.from({ length: w * w * 3 }, (_, i) => i % 251);
  const out = warpAffine(src, w, w, 3, { a: 1, b: 0, tx: -1, ty: -2 }, 4);
  // crop pixel (x, y) shows source pixel (x + 1, y + 2)
  for (let y = 0; y < 3; y++) {
    for (let x = 0; x < 4; x++) {
      for (let c = 0; c < 3; c++) assert.equal(out[(y * 4 + x) * 3 + c], src[((y + 2) * w + x + 1) * 3 + c]);
    }
  }
  assert.deepEqual(Array.from(out.subarray(3 * 4 * 3 + 3 * 3, 3 * 4 * 3 + 3 * 3 + 3)), [0, 0, 0]);
});
