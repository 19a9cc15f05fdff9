import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { optionsFromEnv, ProcessGroup, type ProcessGroupOptions } from '../src/index.js';
import { layoutOf } from '../src/group/nodeAddress.js';
import { withGroups } from './helpers/groups.js';
import { lazyTransports } from './helpers/lazyTransport.js';

type Op = 'sum' | 'mean' | 'max';
type Wire = 'f32' | 'f16' | 'bf16';

/** Independent reference: element i reduced over ranks in float64, in rank order. */
function reference(inputs: Float32Array[], op: Op): Float64Array {
  const out = new Float64Array(inputs[0]!.length);
  for (let i = 0; i < out.length; i++) {
    let acc = op === 'max' ? -Infinity : 0;
    for (const x of inputs) acc = op === 'max' ? Math.max(acc, x[i]!) : acc + x[i]!;
    out[i] = op === 'mean' ? acc / inputs.length : acc;
  }
  return out;
}

/** Relative precision of one wire rounding. */
const EPS: Record<Wire, number> = { f32: 2 ** -24, f16: 2 ** -11, bf16: 2 ** -8 };

function inputsFor(n: number, len: number, seed: number, integral: boolean): Float32Array[] {
  let s = seed >>> 0 || 1;
  const rand = () => ((s = (s * 1664525 + 1013904223) >>> 0), s / 2 ** 32);
  // Integers of magnitude <= 32 are exact on every wire and their sums stay exact.
  return Array.from({ length: n }, () =>
    Float32Array.from({ length: len }, () => (integral ? Math.round(rand() * 64 - 32) : rand() * 2 - 1)),
  );
}

/** Ranks r·L … r·L+L−1 on node r, as mtl-launch numbers them; the node id is all a rank needs. */
const onNodes =
  (local: number, extra: Partial<ProcessGroupOptions> = {}) =>
  (rank: number) => ({
    ...extra,
    node: `node${Math.floor(rank / local)}`,
  });

for (const [nodes, local] of [
  [2, 2],
  [3, 2],
  [2, 3],
] as const) {
  const n = nodes * local;
  test(`hierarchical allReduce on ${nodes} nodes × ${local} matches a float64 reduction, identical on every rank (random lengths, ops, wires)`, async () => {
    const variants: Partial<ProcessGroupOptions>[] = [
      { smallBytes: 0, segmentBytes: 256 },
      // The three phases one after another (no pipeline).
      { smallBytes: 0, segmentBytes: 256, hierPieces: 1 },
      // Shared memory within the node with 2 slots per pair: segments wait for credits.
      { smallBytes: 64, segmentBytes: 512, shm: { slots: 2, minBytes: 1 } },
      { engine: 'zmq', smallBytes: 4096, segmentBytes: 1024 },
    ];
    for (const tuning of variants) {
      await withGroups(
        n,
        async (groups) => {
          for (const g of groups) {
            assert.equal(g.algorithm, 'hier');
            // Same node: shared memory or a unix socket; another node: tcp.
            g.peerEndpoints.forEach((e, p) => {
              if (p === g.rank) return;
              const same = Math.floor(p / local) === Math.floor(g.rank / local);
              assert.equal(e.startsWith('tcp'), !same, `rank ${g.rank} reaches rank ${p} over ${e}`);
            });
          }
          await fc.assert(
            fc.asyncProperty(
              fc.record({
                len: fc.oneof(fc.integer({ min: 0, max: 2 * n + 1 }), fc.integer({ min: 0, max: 3000 })),
                op: fc.constantFrom<Op>('sum', 'mean', 'max'),
                wire: fc.constantFrom<Wire>('f32', 'f16', 'bf16'),
                seed: fc.integer(),
                integral: fc.boolean(),
              }),
              async ({ len, op, wire, seed, integral }) => {
                const inputs = inputsFor(n, len, seed, integral);
                const got = inputs.map((x) => x.slice());
                await Promise.all(groups.map((g, r) => g.allReduce(got[r]!, { op, wire })));
                const want = reference(inputs, op);
                const what = `${nodes}×${local} len=${len} ${op} ${wire} ${JSON.stringify(tuning)}`;
                const bits0 = new Uint32Array(got[0]!.buffer);
                for (let r = 1; r < n; r++)
                  assert.deepEqual(
                    new Uint32Array(got[r]!.buffer),
                    bits0,
                    `${what}: rank ${r} differs from rank 0`,
                  );
                // The flat ring's bound: each hop rounds the partial sum once (L−1 hops in the node,
                // M across, one final rounding: at most N+1 roundings of the largest magnitude).
                const exact = integral && op !== 'mean';
                for (let i = 0; i < len; i++) {
                  const mag = inputs.reduce((m, x) => m + Math.abs(x[i]!), 0) / (op === 'mean' ? n : 1);
                  const tol = exact ? 0 : (n + 1) * EPS[wire] * mag + 1e-30;
                  if (Math.abs(got[0]![i]! - want[i]!) > tol)
                    assert.fail(`${what}[${i}]: got ${got[0]![i]}, want ${want[i]} ± ${tol}`);
                }
              },
            ),
            { numRuns: 12 },
          );
        },
        onNodes(local, tuning),
      );
    }
  });
}

test('inf and NaN survive the hierarchical all-reduce on every wire', async () => {
  await withGroups(
    4,
    async (groups) => {
      for (const wire of ['f32', 'f16', 'bf16'] as const) {
        const inputs = groups.map(() => new Float32Array(5000).fill(1));
        inputs[1]![0] = Infinity;
        inputs[2]![4999] = NaN;
        inputs[3]![2500] = -Infinity;
        const got = inputs.map((x) => x.slice());
        await Promise.all(groups.map((g, r) => g.allReduce(got[r]!, { op: 'sum', wire })));
        for (const b of got) {
          assert.equal(b[0], Infinity, wire);
          assert.ok(Number.isNaN(b[4999]!), wire);
          assert.equal(b[2500], -Infinity, wire);
          assert.equal(b[1], 4, wire);
        }
      }
    },
    onNodes(2, { segmentBytes: 1024 }),
  );
});

test('the layout picks the algorithm: uneven nodes fall back to the flat ring with one log line; ring and hier can be forced', async () => {
  assert.deepEqual(layoutOf(['a', 'b', 'a', 'b']).nodes, [
    [0, 2],
    [1, 3],
  ]);
  const lines: string[] = [];
  await withGroups(
    3,
    async (groups) => {
      for (const g of groups) assert.equal(g.algorithm, 'ring');
    },
    (rank) => ({ node: rank < 2 ? 'a' : 'b', log: (l: string) => lines.push(l) }),
  );
  assert.deepEqual(lines.length, 1);
  assert.match(lines[0]!, /nodes hold 2\+1 ranks \(uneven\): all-reduce uses the flat ring/);
  await withGroups(
    4,
    async (groups) => {
      for (const g of groups) assert.equal(g.algorithm, 'ring');
    },
    onNodes(2, { algorithm: 'ring' }),
  );
  await assert.rejects(
    withGroups(2, async () => undefined, { algorithm: 'hier' }),
    /algorithm 'hier' needs more than one node with the same number \(> 1\) of ranks each; the layout is 2/,
  );
});

test('a buffer reused right after a hierarchical allReduce resolves never corrupts a peer (sends read late)', async () => {
  for (const [nodes, local] of [
    [2, 2],
    [2, 3],
  ]) {
    const n = nodes * local;
    const layout = {
      nodes: Array.from({ length: nodes }, (_, m) => Array.from({ length: local }, (_, l) => m * local + l)),
    };
    const groups = lazyTransports(n, 2).map(
      (t) => new ProcessGroup(t, { timeoutMs: 5000, smallBytes: 64, segmentBytes: 256, layout }),
    );
    for (const wire of ['f32', 'f16', 'bf16'] as const) {
      const bufs = groups.map(() => new Float32Array(1000));
      for (let iter = 0; iter < 3; iter++) {
        await Promise.all(
          groups.map(async (g, r) => {
            assert.equal(g.algorithm, 'hier');
            const b = bufs[r]!;
            b.fill(iter + r);
            await g.allReduce(b, { op: 'sum', wire });
            const want = n * iter + (n * (n - 1)) / 2;
            for (let i = 0; i < b.length; i++)
              if (b[i] !== want)
                assert.fail(`${nodes}×${local} ${wire} iter ${iter} rank ${r}[${i}] = ${b[i]}, want ${want}`);
            b.fill(-12345);
          }),
        );
      }
    }
  }
});

test('the environment chooses the algorithm, the node and the pipeline depth, and a bad value is named', () => {
  const base = { RANK: '0', WORLD_SIZE: '4', MASTER_ADDR: '127.0.0.1', MASTER_PORT: '1', MTL_RUN_ID: 'r' };
  const o = optionsFromEnv({ ...base, MTL_PG_ALGO: 'hier', MTL_NODE_ID: 'rack1-a', MTL_PG_HIER_PIECES: '4' });
  assert.equal(o.algorithm, 'hier');
  assert.equal(o.node, 'rack1-a');
  assert.equal(o.hierPieces, 4);
  assert.throws(
    () => optionsFromEnv({ ...base, MTL_PG_ALGO: 'tree' }),
    /MTL_PG_ALGO must be auto, ring or hier, got "tree"/,
  );
  assert.throws(() => optionsFromEnv({ ...base, MTL_PG_HIER_PIECES: 'x' }), /MTL_PG_HIER_PIECES="x"/);
});
