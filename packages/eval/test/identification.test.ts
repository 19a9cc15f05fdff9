import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { identify, leaveOneOut } from '../src/identification.js';
import { embeddingSet } from '../src/similarity.js';

const set2d = (pts: number[][]) => embeddingSet(Float32Array.from(pts.flat()), 2);

test('gallery/probe: a probe ranks by how many impostors beat its closest mate', () => {
  // gallery directions: id 0 at 0°, id 1 at 90°, id 2 at 45°
  const gallery = {
    embeddings: set2d([
      [1, 0],
      [0, 1],
      [1, 1],
    ]),
    labels: [0, 1, 2],
  };
  // probe of id 0 at 10° (its mate is nearest: rank 1); probe of id 1 at 20° (0° and 45° beat 90°: rank 3);
  // probe of id 7 has no mate and is skipped
  const probes = {
    embeddings: set2d([
      [Math.cos(0.17), Math.sin(0.17)],
      [Math.cos(0.35), Math.sin(0.35)],
      [1, 0],
    ]),
    labels: [0, 1, 7],
  };
  const r = identify(gallery, probes, [1, 2, 3]);
  assert.deepEqual(Array.from(r.ranks), [1, 3, 0]);
  assert.equal(r.probes, 2);
  assert.equal(r.skipped, 1);
  assert.equal(r.rank1, 0.5);
  assert.deepEqual(r.rankK, [
    { k: 1, accuracy: 0.5 },
    { k: 2, accuracy: 0.5 },
    { k: 3, accuracy: 1 },
  ]);
});

test('leave-one-out (FG-NET): each image against all the others; singletons are skipped', () => {
  // id 0: two images at 0° and 30°; id 1: one at 20° and one at 90°; id 2: a single image
  const set = {
    embeddings: set2d([
      [1, 0],
      [Math.cos(0.52), Math.sin(0.52)],
      [Math.cos(0.35), Math.sin(0.35)],
      [0, 1],
      [-1, 0],
    ]),
    labels: [0, 0, 1, 1, 2],
  };
  const r = leaveOneOut(set, [1, 2]);
  // 0°: nearest other is 20° (id 1) before its mate at 30° → rank 2; 30°: 20° (id 1) beats 0° → rank 2;
  // 20°: its mate at 90° is beaten by 0° and 30° → rank 3; 90°: its mate is 20°, beaten only by 30° → rank 2
  assert.deepEqual(Array.from(r.ranks), [2, 2, 3, 2, 0]);
  assert.equal(r.rank1, 0);
  assert.deepEqual(r.rankK[1], { k: 2, accuracy: 0.75 });
  // a distractor at 26°, closer to every probe than its mate, pushes each down by one
  const d = leaveOneOut(set, [1], {
    embeddings: embeddingSet(Float32Array.from([Math.cos(0.45), Math.sin(0.45)]), 2),
    labels: [-1],
  });
  assert.deepEqual(Array.from(d.ranks), [3, 3, 4, 3, 0]);
});

test('random galleries: ranks match sorting every gallery entry by similarity', () => {
  const arb = fc.record({
    g: fc.array(
      fc.tuple(
        fc.integer({ min: 0, max: 4 }),
        fc.float({ min: -1, max: 1, noNaN: true }),
        fc.float({ min: -1, max: 1, noNaN: true }),
      ),
      { minLength: 1, maxLength: 15 },
    ),
    p: fc.array(
      fc.tuple(
        fc.integer({ min: 0, max: 5 }),
        fc.float({ min: -1, max: 1, noNaN: true }),
        fc.float({ min: -1, max: 1, noNaN: true }),
      ),
      { minLength: 1, maxLength: 10 },
    ),
  });
  fc.assert(
    fc.property(arb, ({ g, p }) => {
      const r = identify(
        { embeddings: set2d(g.map((x) => [x[1], x[2]])), labels: g.map((x) => x[0]) },
        { embeddings: set2d(p.map((x) => [x[1], x[2]])), labels: p.map((x) => x[0]) },
        [1, 3],
      );
      const cos = (a: number[], b: number[]) => {
        const na = Math.hypot(Math.fround(a[0]!), Math.fround(a[1]!));
        const nb = Math.hypot(Math.fround(b[0]!), Math.fround(b[1]!));
        return na > 0 && nb > 0
          ? (Math.fround(a[0]!) * Math.fround(b[0]!) + Math.fround(a[1]!) * Math.fround(b[1]!)) / na / nb
          : 0;
      };
      p.forEach((probe, i) => {
        const scored = g.map((x) => ({ label: x[0], s: cos([probe[1], probe[2]], [x[1], x[2]]) }));
        const mates = scored.filter((x) => x.label === probe[0]);
        if (mates.length === 0) return assert.equal(r.ranks[i], 0);
        const best = Math.max(...mates.map((m) => m.s));
        const beaten = scored.filter((x) => x.label !== probe[0] && x.s > best + 1e-6).length;
        const tied = scored.filter((x) => x.label !== probe[0] && Math.abs(x.s - best) <= 1e-6).length;
        // float32 normalisation may resolve near-ties either way
        assert.ok(
          r.ranks[i]! >= 1 + beaten && r.ranks[i]! <= 1 + beaten + tied,
          `probe ${i}: ${r.ranks[i]} vs ${1 + beaten}`,
        );
      });
    }),
    { numRuns: 200, seed: 3 },
  );
});

test('mismatched shapes are reported', () => {
  assert.throws(
    () =>
      identify({ embeddings: set2d([[1, 0]]), labels: [0, 1] }, { embeddings: set2d([[1, 0]]), labels: [0] }),
    /gallery has 1 embeddings but 2 labels/,
  );
});
