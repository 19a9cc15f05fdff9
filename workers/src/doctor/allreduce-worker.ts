// `mtl-doctor --smoke`'s worker (run by mtl-launch --nproc 2): a sum all-reduce of 1 MiB checked
// element by element against the closed form.
import { initProcessGroup, optionsFromEnv } from '@mtlface/collective';

const pg = await initProcessGroup(optionsFromEnv());
const n = 1 << 18;
const pattern = (i: number): number => (i % 97) + 1;
const buf = Float32Array.from({ length: n }, (_, i) => (pg.rank + 1) * pattern(i));
const t0 = performance.now();
await pg.allReduce(buf, { op: 'sum' });
const ms = performance.now() - t0;
// Σ_r (r + 1) · p(i) = p(i) · W(W + 1)/2, exact in f32 for these small integers.
const factor = (pg.worldSize * (pg.worldSize + 1)) / 2;
const bad = buf.findIndex((v, i) => v !== factor * pattern(i));
await pg.close();
if (bad >= 0) {
  console.error(`element ${bad} is ${buf[bad]}, expected ${factor * pattern(bad)}`);
  process.exit(1);
}
if (pg.rank === 0)
  console.log(
    `allreduce ok ${pg.worldSize} ranks, ${(n * 4) / 2 ** 20} MiB f32 sum exact, ${ms.toFixed(1)} ms`,
  );
