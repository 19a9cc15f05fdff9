// npm run bench:data [-- --json] [--images N] [--size S] [--threads 1,2]
// Images per second through decode → resize → flip → normalise for 112×112 JPEGs, ours (sharp in a
// piscina pool) with 1 and 2 threads, next to PyTorch DataLoader + PIL + torchvision when
// /usr/bin/python3 has them.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { synthesize } from '../src/index.js';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? (argv[i + 1] ?? dflt) : dflt;
};
const json = argv.includes('--json');
const count = Number(arg('images', '1000'));
const size = Number(arg('size', '112'));
const threadCounts = arg('threads', '1,2').split(',').map(Number);
const epochs = Number(arg('epochs', '5'));
const here = fileURLToPath(new URL('.', import.meta.url));
const SOURCE_EXEC_ARGV = ['--conditions=mtl-source', '--import', 'tsx'];

// The images: the synthetic set at 112 px (JPEG quality 70–95), generated once and cached.
const dir = join(tmpdir(), `mtl-bench-data-${size}-${count}`);
if (!existsSync(join(dir, 'all.txt'))) {
  const per = 10;
  await synthesize({ out: dir, identities: Math.ceil(count / per), imagesPerIdentity: per, size, seed: 0, pairs: 0 });
}
const list = join(dir, 'all.txt');

interface Row {
  impl: string;
  threads: number;
  size: number;
  images_per_s: number;
  images_per_cpu_s: number;
}
const rows: Row[] = [];
function record(impl: string, threads: number, out: string): void {
  const r = JSON.parse(out.trim().split('\n').pop() as string) as { images: number; seconds: number; cpu_s: number };
  const row = { impl, threads, size, images_per_s: Math.round(r.images / r.seconds), images_per_cpu_s: Math.round(r.images / r.cpu_s) };
  rows.push(row);
  if (json) console.log(JSON.stringify(row));
}

for (const t of threadCounts) {
  const r = spawnSync(
    process.execPath,
    [...SOURCE_EXEC_ARGV, join(here, 'data-run.ts'), '--list', list, '--threads', String(t), '--size', String(size), '--epochs', String(epochs)],
    { encoding: 'utf8', env: { ...process.env, UV_THREADPOOL_SIZE: String(t) } },
  );
  if (r.status !== 0) throw new Error(`data-run failed: ${r.stderr}`);
  record('mtlface piscina+wasm-jpeg', t, r.stdout);
}

const PY = '/usr/bin/python3';
const probe = existsSync(PY) ? spawnSync(PY, ['-c', 'import torch, torchvision, PIL'], { encoding: 'utf8' }) : undefined;
if (probe?.status === 0) {
  for (const workers of [0, ...threadCounts.filter((t) => t > 1)]) {
    const r = spawnSync(PY, [join(here, 'torch_loader.py'), list, String(size), String(workers), String(epochs), '64'], {
      encoding: 'utf8',
      env: { ...process.env, OMP_NUM_THREADS: '1' },
    });
    if (r.status !== 0) throw new Error(`torch_loader.py failed: ${r.stderr}`);
    // 0 loader workers = everything in the main process (one thread).
    record(`pytorch DataLoader+PIL (${workers} workers)`, Math.max(1, workers), r.stdout);
  }
} else if (!json) {
  console.log('(PyTorch comparison skipped: /usr/bin/python3 with torch and torchvision not found)');
}

if (!json) {
  console.log(`\n${count} JPEGs → ${size}×${size} float32 NHWC [-1,1] with random flip; best of ${epochs} timed epochs after 3 warm-up epochs; images/CPU-s counts every thread and process involved\n`);
  const head = ['impl', 'threads', 'images/s', 'images/CPU-s'];
  const body = rows.map((r) => [r.impl, String(r.threads), String(r.images_per_s), String(r.images_per_cpu_s)]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)));
  for (const line of [head, w.map((n) => '-'.repeat(n)), ...body]) console.log(line.map((c, i) => c.padEnd(w[i] as number)).join('  '));
}
