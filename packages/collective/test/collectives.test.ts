import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ProcessGroup } from '../src/index.js';
import { withGroups } from './helpers/groups.js';
import { lazyTransports } from './helpers/lazyTransport.js';

type Op = 'sum' | 'mean' | 'max';
type Wire = 'f32' | 'f16' | 'bf16';

/** Sequential reference: element i reduced over ranks in double precision. */
function reference(inputs: Float32Array[], op: Op): Float64Array {
  const n = inputs[0]!.length;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let acc = op === 'max' ? -Infinity : 0;
    for (const x of inputs)
      acc =
        op === 'max' ? (Number.isNaN(acc) || x[i]! > acc || Number.isNaN(x[i]!) ? x[i]! : acc) : acc + x[i]!;
    out[i] = op === 'mean' ? acc / inputs.length : acc;
  }
  return out;
}

/** Relative precision of one wire rounding. */
const EPS: Record<Wire, number> = { f32: 2 ** -24, f16: 2 ** -11, bf16: 2 ** -8 };

function assertClose(got: Float32Array, want: Float64Array, tol: (i: number) => number, what: string): void {
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    if (Number.isNaN(w) || !Number.isFinite(w)) {
      assert.ok(
        Object.is(g, w) || (Number.isNaN(w) && Number.isNaN(g)),
        `${what}[${i}]: got ${g}, want ${w}`,
      );
    } else if (Math.abs(g - w) > tol(i)) assert.fail(`${what}[${i}]: got ${g}, want ${w} ± ${tol(i)}`);
  }
}

async function allReduceEverywhere(
  groups: ProcessGroup[],
  inputs: Float32Array[],
  op: Op,
  wire: Wire,
): Promise<Float32Array[]> {
  const bufs = inputs.map((x) => x.slice());
  await Promise.all(groups.map((g, r) => g.allReduce(bufs[r]!, { op, wire })));
  return bufs;
}

function assertIdentical(bufs: Float32Array[], what: string): void {
  const a = new Uint32Array(bufs[0]!.buffer);
  for (let r = 1; r < bufs.length; r++)
    assert.deepEqual(new Uint32Array(bufs[r]!.buffer), a, `${what}: rank ${r} differs from rank 0`);
}

const caseArb = (n: number) =>
  fc.record({
    len: fc.oneof(fc.integer({ min: 0, max: n + 1 }), fc.integer({ min: 0, max: 3000 })),
    op: fc.constantFrom<Op>('sum', 'mean', 'max'),
    wire: fc.constantFrom<Wire>('f32', 'f16', 'bf16'),
    seed: fc.integer(),
    integral: fc.boolean(),
  });

function inputsFor(n: number, len: number, seed: number, integral: boolean): Float32Array[] {
  let s = seed >>> 0 || 1;
  const rand = () => ((s = (s * 1664525 + 1013904223) >>> 0), s / 2 ** 32);
  // Integers of magnitude <= 32 are exact on every wire and their sums stay exact.
  return Array.from({ length: n }, () =>
    Float32Array.from({ length: len }, () => (integral ? Math.round(rand() * 64 - 32) : rand() * 2 - 1)),
  );
}

for (const n of [1, 2, 3, 4, 5]) {
  test(`allReduce matches a sequential reduction at world size ${n} (random lengths, ops, wires; direct and ring paths; both engines)`, async () => {
    const variants = [
      {},
      { smallBytes: 0, segmentBytes: 256 },
      { engine: 'zmq' as const, smallBytes: 4096, segmentBytes: 1024 },
      // Shared memory with 2 slots per pair: most segments wait for a credit. Mapped rings
      // (native addon; payloads reduced straight out of the slot) and pread/pwrite ones.
      { transport: 'shm' as const, smallBytes: 64, segmentBytes: 512, shm: { slots: 2, minBytes: 1 } },
      {
        transport: 'shm' as const,
        smallBytes: 64,
        segmentBytes: 512,
        shm: { slots: 2, minBytes: 1, mmap: false },
      },
    ];
    for (const tuning of variants) {
      await withGroups(
        n,
        async (groups) => {
          await fc.assert(
            fc.asyncProperty(caseArb(n), async ({ len, op, wire, seed, integral }) => {
              const inputs = inputsFor(n, len, seed, integral);
              const got = await allReduceEverywhere(groups, inputs, op, wire);
              const want = reference(inputs, op);
              const what = `n=${n} len=${len} ${op} ${wire} ${JSON.stringify(tuning)}`;
              assertIdentical(got, what);
              if (integral && op !== 'mean') assertClose(got[0]!, want, () => 0, what);
              else {
                // Each hop rounds the partial sum once; bound the error by N+1 roundings of the largest magnitude.
                const mag = (i: number) =>
                  inputs.reduce((m, x) => m + Math.abs(x[i]!), 0) / (op === 'mean' ? n : 1);
                assertClose(got[0]!, want, (i) => (n + 1) * EPS[wire] * mag(i) + 1e-30, what);
              }
            }),
            { numRuns: n === 1 ? 10 : 20 },
          );
        },
        tuning,
      );
    }
  });
}

for (const n of [2, 3]) {
  test(`allReduce over TCP with segments past the staging size (payloads read straight into pooled buffers) matches a sequential reduction, world size ${n}`, async () => {
    await withGroups(
      n,
      async (groups) => {
        await fc.assert(
          fc.asyncProperty(
            fc.record({
              len: fc.integer({ min: 0, max: 400_000 }),
              op: fc.constantFrom<Op>('sum', 'mean', 'max'),
              wire: fc.constantFrom<Wire>('f32', 'f16', 'bf16'),
              seed: fc.integer(),
            }),
            async ({ len, op, wire, seed }) => {
              const inputs = inputsFor(n, len, seed, true);
              const got = await allReduceEverywhere(groups, inputs, op, wire);
              const what = `n=${n} len=${len} ${op} ${wire} tcp`;
              assertIdentical(got, what);
              const want = reference(inputs, op);
              if (op !== 'mean') assertClose(got[0]!, want, () => 0, what);
              else assertClose(got[0]!, want, (i) => 2 * EPS[wire] * Math.abs(want[i]!) + 1e-30, what);
            },
          ),
          { numRuns: 6 },
        );
      },
      { transport: 'tcp' as const, segmentBytes: 256 * 1024 },
    );
  });
}

test('inf and NaN survive every wire and op (the loss scaler must see overflow)', async () => {
  await withGroups(3, async (groups) => {
    for (const wire of ['f32', 'f16', 'bf16'] as const) {
      for (const op of ['sum', 'mean', 'max'] as const) {
        for (const len of [4, 20000]) {
          const inputs = groups.map(() => new Float32Array(len).fill(1));
          inputs[1]![0] = Infinity;
          inputs[2]![1] = NaN;
          inputs[0]![2] = -Infinity;
          const got = await allReduceEverywhere(groups, inputs, op, wire);
          for (const b of got) {
            assert.equal(b[0], op === 'max' ? Infinity : Infinity, `${wire} ${op} +inf`);
            assert.ok(Number.isNaN(b[1]!), `${wire} ${op} NaN`);
            assert.equal(b[2], op === 'max' ? 1 : -Infinity, `${wire} ${op} -inf`);
            assert.equal(b[3], op === 'sum' ? 3 : 1);
          }
        }
      }
    }
    // f16 overflow of a finite sum becomes inf.
    const big = groups.map(() => new Float32Array(10).fill(40000));
    const got = await allReduceEverywhere(groups, big, 'sum', 'f16');
    assert.equal(got[0]![0], Infinity);
  });
});

test('broadcast, allGather, reduceScatter and barrier agree with their definitions', async () => {
  await withGroups(
    4,
    async (groups) => {
      for (const len of [0, 3, 1000, 70000]) {
        for (const root of [0, 3]) {
          const bufs = groups.map((g) => Float32Array.from({ length: len }, (_, i) => g.rank * 1000 + i));
          await Promise.all(groups.map((g, r) => g.broadcast(bufs[r]!, root)));
          for (const b of bufs)
            assert.deepEqual(
              b,
              Float32Array.from({ length: len }, (_, i) => root * 1000 + i),
            );
          const bytes = groups.map((g) => new Uint8Array(len).fill(g.rank + 1));
          await Promise.all(groups.map((g, r) => g.broadcast(bytes[r]!, root)));
          for (const b of bytes) assert.ok(b.every((v) => v === root + 1));
        }
      }
      const gathered = await Promise.all(
        groups.map((g) => g.allGather(new TextEncoder().encode('r'.repeat(g.rank)))),
      );
      for (const g of gathered)
        assert.deepEqual(
          g.map((b) => new TextDecoder().decode(b)),
          ['', 'r', 'rr', 'rrr'],
        );
      for (const len of [0, 2, 10, 4097]) {
        const bufs = groups.map((g) => Float32Array.from({ length: len }, (_, i) => i + g.rank));
        const mine = await Promise.all(groups.map((g, r) => g.reduceScatter(bufs[r]!, { op: 'sum' })));
        const full = Float32Array.from({ length: len }, (_, i) => 4 * i + 6);
        const joined = mine.flatMap((m) => Array.from(m));
        assert.deepEqual(
          joined,
          Array.from(full),
          `reduceScatter len ${len}: chunks in rank order rebuild the sum`,
        );
      }
      let entered = 0;
      await Promise.all(
        groups.map(async (g, r) => {
          await new Promise((res) => setTimeout(res, r * 30));
          entered++;
          await g.barrier();
          assert.equal(entered, 4, `rank ${r} left the barrier before everyone entered`);
        }),
      );
    },
    { segmentBytes: 4096 },
  );
});

test('collectives issued back-to-back without awaiting complete in order with the right data', async () => {
  await withGroups(
    3,
    async (groups) => {
      const perRank = groups.map((g) => {
        const pending: Promise<unknown>[] = [];
        const bufs: Float32Array[] = [];
        for (let k = 0; k < 40; k++) {
          const len = [1, 100, 5000, 20000][k % 4]!;
          const b = new Float32Array(len).fill(k + g.rank);
          bufs.push(b);
          pending.push(
            k % 5 === 4 ? g.broadcast(b, k % 3) : g.allReduce(b, { op: 'sum', wire: k % 2 ? 'f16' : 'f32' }),
          );
          if (k % 7 === 0) pending.push(g.barrier());
        }
        return { pending, bufs };
      });
      await Promise.all(perRank.flatMap((p) => p.pending));
      for (const { bufs } of perRank) {
        bufs.forEach((b, k) => {
          const want = k % 5 === 4 ? k + (k % 3) : 3 * k + 3;
          assert.ok(
            b.every((v) => v === want),
            `collective #${k}: got ${b[0]}, want ${want}`,
          );
        });
      }
    },
    { segmentBytes: 8192 },
  );
});

/** Each rank fills its buffer, all-reduces, checks, and clobbers the buffer the moment its call resolves. */
async function reuseRightAway(
  groups: ProcessGroup[],
  len: number,
  iters: number,
  opts: { wire: Wire; op?: Op },
  call = 'allReduce',
) {
  const bufs = groups.map(() => new Float32Array(len));
  const n = groups.length;
  for (let iter = 0; iter < iters; iter++) {
    await Promise.all(
      groups.map(async (g, r) => {
        const b = bufs[r]!;
        b.fill(iter + r);
        if (call === 'broadcast') await g.broadcast(b, iter % n);
        else await g.allReduce(b, { op: 'sum', ...opts });
        const want = call === 'broadcast' ? iter + (iter % n) : n * iter + (n * (n - 1)) / 2;
        for (let i = 0; i < len; i++)
          if (b[i] !== want)
            assert.fail(`${call} ${opts.wire} iter ${iter} rank ${r}[${i}] = ${b[i]}, want ${want}`);
        b.fill(-12345);
      }),
    );
  }
}

test('buffer reuse right after a collective resolves is safe even when the transport reads sends late', async () => {
  for (const n of [2, 3, 4]) {
    const groups = lazyTransports(n, 2).map(
      (t) => new ProcessGroup(t, { timeoutMs: 5000, smallBytes: 64, segmentBytes: 256 }),
    );
    for (const wire of ['f32', 'f16', 'bf16'] as const) await reuseRightAway(groups, 1000, 3, { wire });
    await reuseRightAway(groups, 1000, 3, { wire: 'f32' }, 'broadcast');
    await reuseRightAway(groups, 10, 3, { wire: 'f32' }); // direct path
  }
});

test('a buffer reused right after allReduce resolves never corrupts a peer (the by-reference send trap; sockets and shared memory)', async () => {
  const transports = [
    { segmentBytes: 1 << 20, transport: 'ipc' as const },
    // Shared memory with 2 slots per pair: sends wait for credits by reference.
    { segmentBytes: 1 << 18, transport: 'shm' as const, shm: { slots: 2 } },
    { segmentBytes: 1 << 18, transport: 'shm' as const, shm: { slots: 2, mmap: false } },
  ];
  for (const [wire, tuning] of (['f32', 'f16'] as const).flatMap((w) =>
    transports.map((t) => [w, t] as const),
  )) {
    await withGroups(
      3,
      async (groups) => {
        const len = 1 << 20; // 4 MiB of f32, several 1 MiB segments per chunk
        const bufs = groups.map(() => new Float32Array(len));
        for (let iter = 0; iter < 6; iter++) {
          await Promise.all(
            groups.map(async (g, r) => {
              const b = bufs[r]!;
              b.fill(iter + r);
              await g.allReduce(b, { op: 'sum', wire });
              const want = 3 * iter + 3;
              // Check, then clobber at once: if a neighbour were still reading our memory it would see this.
              for (let i = 0; i < len; i += 997)
                if (b[i] !== want)
                  assert.fail(
                    `${wire} ${JSON.stringify(tuning)} iter ${iter} rank ${r}[${i}] = ${b[i]}, want ${want}`,
                  );
              assert.equal(b[len - 1], want);
              b.fill(-12345);
            }),
          );
        }
      },
      tuning,
    );
  }
});
