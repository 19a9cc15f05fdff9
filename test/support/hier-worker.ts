/**
 * A worker for the hierarchical all-reduce across network namespaces: joins the process group from
 * the launcher's environment and all-reduces seeded random buffers on every wire. Every rank can
 * generate every rank's input, so it checks its result against a float64 reduction of all of
 * them itself. Prints one line per wire: `<algorithm> <endpoints> <wire> <op> <error/bound> <digest>`;
 * the test compares the digests across ranks (bit-identity).
 */
import { createHash } from 'node:crypto';
import { initProcessGroup } from '@mtlface/collective';

const pg = await initProcessGroup();
const n = pg.worldSize;
const len = 300_001; // odd, so chunks and segments are uneven
const input = (rank: number): Float32Array => {
  let s = (rank + 1) * 2654435761;
  const out = new Float32Array(len);
  for (let i = 0; i < len; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
};
const inputs = Array.from({ length: n }, (_, r) => input(r));
const EPS = { f32: 2 ** -24, f16: 2 ** -11, bf16: 2 ** -8 } as const;
const endpoints = pg.peerEndpoints.map((e) => e.split(':')[0]).join(',');
for (const [wire, op] of [
  ['f32', 'sum'],
  ['f16', 'mean'],
  ['bf16', 'sum'],
] as const) {
  const buf = inputs[pg.rank]!.slice();
  await pg.allReduce(buf, { wire, op });
  let worst = 0;
  for (let i = 0; i < len; i++) {
    let sum = 0;
    let mag = 0;
    for (const x of inputs) {
      sum += x[i]!;
      mag += Math.abs(x[i]!);
    }
    const div = op === 'mean' ? n : 1;
    // The flat ring's bound: at most N+1 roundings of the largest magnitude.
    const bound = ((n + 1) * EPS[wire] * mag) / div + 1e-30;
    worst = Math.max(worst, Math.abs(buf[i]! - sum / div) / bound);
  }
  const digest = createHash('sha256').update(new Uint8Array(buf.buffer)).digest('hex').slice(0, 16);
  console.log(`${pg.algorithm} ${endpoints} ${wire} ${op} ${worst.toFixed(3)} ${digest}`);
}
await pg.close();
