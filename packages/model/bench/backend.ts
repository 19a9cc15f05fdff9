// npm run bench:backend [-- --json] [--backends native,wasm] [--models ir-tiny@64,ir50@112]
//   [--batch 8[,64]] [--min-seconds 8] [--timeout-s 900] [--slow-timeout-s 180]
// Images/s of a training step (forward + backward + SGD) per backend that loads
// here, and PyTorch on the same architecture when Debian's python3-torch is
// installed; every configuration runs in its own process (peak RSS is its own:
// VmHWM, with the peak of live tensor bytes beside it for tfjs backends).
// --batch takes a list (the recipe's batch is 64 per worker).
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SOURCE_EXEC_ARGV } from '../../../scripts/source-argv.mjs';
import { probeBackends } from '@mtlface/backend';

interface Row {
  backend: string;
  model: string;
  size: number;
  batch: number;
  images_per_s: number | null;
  peak_rss_mb: number | null;
  tensors_peak_mb?: number;
  error?: string;
}

const { values: opt } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    backends: { type: 'string' },
    models: { type: 'string', default: 'ir-tiny@64,ir-tiny@112,ir50@112' },
    batch: { type: 'string', default: '8' },
    'min-seconds': { type: 'string', default: '8' },
    'timeout-s': { type: 'string', default: '900' },
    'slow-timeout-s': { type: 'string', default: '180' },
    python: { type: 'string', default: '/usr/bin/python3' },
  },
});

const stepScript = fileURLToPath(new URL('./step.ts', import.meta.url));
const torchScript = fileURLToPath(new URL('./torch_step.py', import.meta.url));
const batches = opt.batch!.split(',').map((b) => {
  if (!/^[1-9]\d*$/.test(b))
    throw new Error(`--batch: expected positive integers separated by commas, got '${b}'`);
  return Number(b);
});
const models = opt.models!.split(',').map((m) => {
  const [arch, size] = m.split('@');
  if (!arch || !size || !Number.isInteger(Number(size)))
    throw new Error(`--models: expected arch@size, got '${m}'`);
  return { arch, size: Number(size) };
});

// webgpu on a software adapter (lavapipe) only when named: it is a correctness target, not a speed one.
const available = (await probeBackends())
  .filter((b) => b.available && (b.name !== 'webgpu' || b.auto))
  .map((b) => b.name as string);
const backends = opt.backends ? opt.backends.split(',') : available;
const hasTorch = spawnSync(opt.python!, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
if (!opt.json && !hasTorch) console.log(`(no PyTorch rows: ${opt.python} cannot import torch)`);

function runChild(
  cmd: string,
  args: string[],
  timeoutS: number,
): Promise<{ json: Row | null; error?: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutS * 1000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').pop() ?? '';
      if (code === 0 && line.startsWith('{')) return resolve({ json: JSON.parse(line) as Row });
      const why =
        signal === 'SIGKILL'
          ? `no result within ${timeoutS} s`
          : (err
              .trim()
              .split('\n')
              .find((l) => /Error|error/.test(l)) ?? `exit ${code}`);
      resolve({ json: null, error: why.slice(0, 160) });
    });
  });
}

const rows: Row[] = [];
const emit = (r: Row) => {
  rows.push(r);
  if (opt.json) console.log(JSON.stringify(r));
};
for (const batch of batches)
  for (const { arch, size } of models) {
    const common = [
      '--arch',
      arch,
      '--size',
      String(size),
      '--batch',
      String(batch),
      '--min-seconds',
      opt['min-seconds']!,
    ];
    const jobs: { backend: string; cmd: string; args: string[]; timeoutS: number }[] = backends.map((b) => ({
      backend: b,
      cmd: process.execPath,
      args: [...SOURCE_EXEC_ARGV, stepScript, '--backend', b, ...common],
      timeoutS: Number(
        b === 'cpu' || b === 'wasm' || b === 'webgpu' ? opt['slow-timeout-s'] : opt['timeout-s'],
      ),
    }));
    if (hasTorch) {
      jobs.push({
        backend: 'pytorch',
        cmd: opt.python!,
        args: [torchScript, ...common],
        timeoutS: Number(opt['timeout-s']),
      });
    }
    for (const job of jobs) {
      const r = await runChild(job.cmd, job.args, job.timeoutS);
      emit(
        r.json
          ? {
              backend: r.json.backend,
              model: arch,
              size,
              batch,
              images_per_s: r.json.images_per_s,
              peak_rss_mb: r.json.peak_rss_mb,
              ...(r.json.tensors_peak_mb !== undefined ? { tensors_peak_mb: r.json.tensors_peak_mb } : {}),
            }
          : {
              backend: job.backend,
              model: arch,
              size,
              batch,
              images_per_s: null,
              peak_rss_mb: null,
              error: r.error,
            },
      );
    }
  }

if (!opt.json) {
  const header = [
    'model',
    'size',
    'batch',
    'backend',
    'images/s',
    'peak RSS MB',
    'tensors peak MB',
    'step time vs PyTorch',
    'peak RSS vs PyTorch',
  ];
  const table = rows.map((r) => {
    const ref = rows.find(
      (p) => p.backend === 'pytorch' && p.model === r.model && p.size === r.size && p.batch === r.batch,
    );
    const ratio =
      r.images_per_s && ref?.images_per_s ? `${(ref.images_per_s / r.images_per_s).toFixed(2)}×` : '';
    const rss = r.peak_rss_mb && ref?.peak_rss_mb ? `${(r.peak_rss_mb / ref.peak_rss_mb).toFixed(2)}×` : '';
    return [
      r.model,
      String(r.size),
      String(r.batch),
      r.backend,
      r.images_per_s?.toString() ?? `— (${r.error})`,
      r.peak_rss_mb?.toString() ?? '',
      r.tensors_peak_mb?.toString() ?? '',
      ratio,
      rss,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const t of table) console.log(line(t));
}
