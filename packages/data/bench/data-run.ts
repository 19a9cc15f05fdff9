// One measurement of the @mtlface/data image pipeline (run by data.ts in a child process so that
// UV_THREADPOOL_SIZE can match the thread count): prints one JSON object.
import { ImagePool, loadDataset } from '../src/index.js';

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? dflt) : dflt;
};
const list = arg('list', '');
const threads = Number(arg('threads', '1'));
const size = Number(arg('size', '112'));
const batch = Number(arg('batch', '64'));
const inFlight = Number(arg('in-flight', '4'));
const epochs = Number(arg('epochs', '5'));

const ds = await loadDataset(list);
const pool = new ImagePool({ threads, inFlight });
const files = ds.files;
const flips = Uint8Array.from(files, (_, i) => i & 1);

async function epoch(): Promise<number> {
  let n = 0;
  // One batch per thread in flight (plus one queued), one pool task per batch, as BatchLoader does
  // with its prefetch queue.
  const pending: Promise<unknown>[] = [];
  for (let s = 0; s < files.length; s += batch) {
    const e = Math.min(files.length, s + batch);
    pending.push(
      pool.decode(ds.root, files.slice(s, e), size, flips.subarray(s, e), { tasks: 1 }).then((r) => {
        if (r.errors.some((x) => x !== '')) throw new Error(r.errors.find((x) => x !== ''));
        n += e - s;
      }),
    );
    if (pending.length > threads) await pending.shift();
  }
  await Promise.all(pending);
  return n;
}

// Warm-up: thread start, module load, page cache, and V8 tiering up the per-pixel loops (which
// takes a few thousand images per thread).
const warmup = Number(arg('warmup', '3'));
for (let i = 0; i < warmup; i++) await epoch();
// Each timed epoch separately: the best one is reported (as timeit does), since other jobs on a
// shared machine only ever make an epoch slower.
let best = { images: 0, seconds: Infinity, cpu_s: Infinity };
for (let i = 0; i < epochs; i++) {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const n = await epoch();
  const seconds = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(cpu0);
  const cpu_s = (c.user + c.system) / 1e6;
  if (n / cpu_s > best.images / best.cpu_s) best = { images: n, seconds: Math.min(seconds, best.seconds), cpu_s };
  else best.seconds = Math.min(seconds, best.seconds);
}
await pool.close();
console.log(JSON.stringify(best));
