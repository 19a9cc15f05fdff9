// `npm run bench:train [-- --json] [--iters N] [--only demo|ir50] [--set "key=value ..."] [--no-peer-wait]
//   [--no-torch] [--python /usr/bin/python3]`:
// per-worker images/s of the training step and its breakdown (data wait, forward+backward, gradient
// copy-out, peer wait, exposed all-reduce, optimizer) for the demo config (joint with 1 and 2 workers,
// AIFR alone and FAS alone with 1), and ir50 at 112 (AIFR step). Under every scenario a `pytorch` row:
// the same step in PyTorch (torch_train_step.py: the parity reference's networks, losses and
// optimizers), as many processes (DDP over gloo beyond one), the same batch per worker, and
// torch.set_num_threads equal to the workers' OMP threads; then our step time over its. With more than one worker a barrier before each gradient sync separates
// the wait for the slowest rank (load imbalance; Horovod's NEGOTIATE) from the communication that
// copy-out does not hide; --no-peer-wait leaves the barrier out (then the wait is inside the
// exposed all-reduce). --set applies config overrides to every scenario.
// Workers are child processes joined through the real collective; data comes from the real loader
// on the synthetic set (data/synth, generated into a temp dir when absent).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { SOURCE_EXEC_ARGV } from '../../../scripts/source-argv.mjs';
import type { StepTimings, SyncTimings } from '../src/index.js';
import { referenceConfig } from '../test/fixtures/reference-config.js';

const REPO = new URL('../../../', import.meta.url).pathname;
const args = process.argv.slice(2);

interface Scenario {
  name: string;
  workers: number;
  overrides: string[];
  iters: number;
}

/** The trainer's step timings summed over iterations, and per sync the ones the table shows. */
const STEP_KEYS = ['computeMs', 'copyOutMs', 'exposedCommMs', 'peerWaitMs', 'optimizerMs', 'bytes'] as const;
const SYNC_KEYS = ['bytes', 'peerWaitMs', 'exposedCommMs', 'copyOutMs'] as const;
type SyncSums = Pick<SyncTimings, (typeof SYNC_KEYS)[number]>;
type StepSums = Pick<StepTimings, (typeof STEP_KEYS)[number]> & { stepMs: number; dataWaitMs: number };

interface WorkerResult extends StepSums {
  rank: number;
  backend: string;
  batch: number;
  iters: number;
  syncs: Record<string, SyncSums>;
  /** oneDNN threads of this worker (OMP_NUM_THREADS after initBackend). */
  threads: number;
  /** torch_train_step.py's config for this scenario (rank 0 only). */
  torchConfig?: Record<string, unknown>;
}

/** One PyTorch worker's line from torch_train_step.py. */
interface TorchResult {
  threads: number;
  batch: number;
  step_ms: number;
  fr_ms: number;
  fas_ms: number;
  peak_rss_mb: number;
}

function addInto<K extends string>(
  acc: Record<K, number>,
  from: Record<K, number>,
  keys: readonly K[],
): void {
  for (const k of keys) acc[k] += from[k];
}

const zeros = <K extends string>(keys: readonly K[]): Record<K, number> =>
  Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;

interface ChildSpec {
  overrides: string[];
  iters: number;
  peerWait: boolean;
}

async function child(spec: ChildSpec): Promise<void> {
  const { initBackend } = await import('@mtlface/backend');
  const { initProcessGroup } = await import('@mtlface/collective');
  const { BatchLoader, DistributedSampler, FasTargetSampler, loadDataset } = await import('@mtlface/data');
  const { loadConfig, Trainer } = await import('../src/index.js');
  const cfg = loadConfig(join(REPO, 'configs/demo.yaml'), spec.overrides);
  const backend = await initBackend({ backend: cfg.backend, log: () => {} });
  const worldSize = Number(process.env.WORLD_SIZE);
  const group = worldSize > 1 ? await initProcessGroup() : null;
  const rank = group?.rank ?? 0;
  const dataset = await loadDataset(cfg.data.train_list, {
    root: cfg.data.root,
    ageGroups: cfg.model.groups,
  });
  const sampler = new DistributedSampler({
    size: dataset.files.length,
    batchSize: cfg.data.batch_size,
    worldSize,
    rank,
    seed: 0,
  });
  const fas =
    cfg.mode === 'aifr'
      ? undefined
      : new FasTargetSampler(dataset.groups, cfg.model.groups, 0, { skipEmptyGroups: true });
  const loader = new BatchLoader({
    dataset,
    sampler,
    size: cfg.model.input_size,
    threads: cfg.data.loader_threads,
    prefetch: cfg.data.prefetch,
    ...(fas ? { fas } : {}),
  });
  const trainer = new Trainer(cfg, {
    numClasses: dataset.numClasses,
    group,
    measurePeerWait: spec.peerWait && worldSize > 1,
  });
  const syncs: WorkerResult['syncs'] = {};
  const sum: StepSums = { stepMs: 0, dataWaitMs: 0, ...zeros(STEP_KEYS) };
  const warmup = 1;
  for (let it = 0; it < warmup + spec.iters; it++) {
    const t0 = performance.now();
    const batch = await loader.next();
    const wait = performance.now() - t0;
    const r = await trainer.step(batch, it);
    if (it < warmup) continue;
    sum.stepMs += performance.now() - t0;
    sum.dataWaitMs += wait;
    addInto(sum, r.timings, STEP_KEYS);
    for (const [name, t] of Object.entries(r.timings.syncs))
      addInto((syncs[name] ??= zeros(SYNC_KEYS)), t, SYNC_KEYS);
  }
  await loader.close();
  trainer.dispose();
  await group?.close();
  const out: WorkerResult = {
    rank,
    backend: backend.name,
    batch: cfg.data.batch_size,
    iters: spec.iters,
    ...sum,
    syncs,
    threads: Number(process.env.OMP_NUM_THREADS),
    ...(rank === 0
      ? {
          torchConfig: {
            ...referenceConfig({ cfg, worldSize, steps: spec.iters, classes: dataset.numClasses }, 'F32'),
            batch: cfg.data.batch_size,
            dropout: cfg.model.dropout,
          },
        }
      : {}),
  };
  process.stdout.write(`RESULT ${JSON.stringify(out)}\n`);
}

async function runScenario(s: Scenario, dataDir: string, peerWait: boolean): Promise<WorkerResult[]> {
  const { StoreServer } = await import('@mtlface/collective');
  const token = randomUUID();
  const store = await StoreServer.listen({ host: '127.0.0.1', port: 0, token });
  const runId = randomUUID();
  const overrides = [...s.overrides, `data.root=${dataDir}`, `data.train_list=${join(dataDir, 'train.txt')}`];
  try {
    return await Promise.all(
      Array.from({ length: s.workers }, (_, rank) => {
        const env = {
          ...process.env,
          RANK: String(rank),
          LOCAL_RANK: String(rank),
          WORLD_SIZE: String(s.workers),
          LOCAL_WORLD_SIZE: String(s.workers),
          MASTER_ADDR: '127.0.0.1',
          MASTER_PORT: String(store.port),
          MTL_RUN_ID: runId,
          MTL_RUN_TOKEN: token,
        };
        return new Promise<WorkerResult>((resolve, reject) => {
          const c = spawn(
            process.execPath,
            [
              ...SOURCE_EXEC_ARGV,
              new URL(import.meta.url).pathname,
              '--child',
              JSON.stringify({ overrides, iters: s.iters, peerWait } satisfies ChildSpec),
            ],
            { env, stdio: ['ignore', 'pipe', 'inherit'] },
          );
          let out = '';
          c.stdout.on('data', (d) => (out += d));
          c.on('exit', (code) => {
            const line = out.split('\n').find((l) => l.startsWith('RESULT '));
            if (code === 0 && line) resolve(JSON.parse(line.slice(7)) as WorkerResult);
            else reject(new Error(`${s.name} rank ${rank} exited with ${code}`));
          });
        });
      }),
    );
  } finally {
    await store.close();
  }
}

const TORCH_SCRIPT = new URL('./torch_train_step.py', import.meta.url).pathname;
const TORCH_TIMEOUT_MS = 1_800_000;

/** The scenario's step in PyTorch: one process per worker, DDP over gloo beyond one. */
async function runTorch(python: string, s: Scenario, ours: WorkerResult[]): Promise<TorchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'mtl-bench-torch-'));
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify(ours.find((r) => r.rank === 0)!.torchConfig));
  try {
    return await Promise.all(
      ours.map(
        (r) =>
          new Promise<TorchResult>((resolve, reject) => {
            const c = spawn(
              python,
              [
                TORCH_SCRIPT,
                config,
                String(r.rank),
                '--iters',
                String(s.iters),
                '--threads',
                String(r.threads),
                '--dist-file',
                join(dir, 'dist'),
              ],
              { stdio: ['ignore', 'pipe', 'pipe'] },
            );
            let out = '';
            let err = '';
            c.stdout.on('data', (d) => (out += d));
            c.stderr.on('data', (d) => (err = (err + d).slice(-2000)));
            const timer = setTimeout(() => c.kill('SIGKILL'), TORCH_TIMEOUT_MS);
            c.on('close', (code, signal) => {
              clearTimeout(timer);
              const line = out.trim().split('\n').pop() ?? '';
              if (code === 0 && line.startsWith('{')) resolve(JSON.parse(line) as TorchResult);
              else
                reject(
                  new Error(
                    `${python} ${TORCH_SCRIPT} (${s.name}) rank ${r.rank} failed (${signal ?? `status ${code}`}): ${err.trim()}`,
                  ),
                );
            });
          }),
      ),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const json = args.includes('--json');
  const itersArg = args.indexOf('--iters');
  const iters = itersArg >= 0 ? Number(args[itersArg + 1]) : 10;
  const onlyArg = args.indexOf('--only');
  const only = onlyArg >= 0 ? args[onlyArg + 1] : null;
  const setArg = args.indexOf('--set');
  const extra = setArg >= 0 ? (args[setArg + 1] ?? '').split(/\s+/).filter(Boolean) : [];
  const peerWait = !args.includes('--no-peer-wait');
  const pythonArg = args.indexOf('--python');
  const python = pythonArg >= 0 ? args[pythonArg + 1]! : '/usr/bin/python3';
  const torchWhyNot = args.includes('--no-torch')
    ? '--no-torch'
    : spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore', timeout: 60_000 }).status !== 0
      ? `${python} cannot import torch`
      : null;
  let dataDir = join(REPO, 'data/synth');
  if (!existsSync(join(dataDir, 'train.txt'))) {
    const { synthesize } = await import('@mtlface/data');
    dataDir = mkdtempSync(join(tmpdir(), 'mtl-bench-train-'));
    await synthesize({ out: dataDir, identities: 60, imagesPerIdentity: 10, size: 32, seed: 0, pairs: 100 });
  }
  const scenarios: Scenario[] = [
    { name: 'demo', workers: 1, overrides: [...extra], iters },
    { name: 'demo', workers: 2, overrides: [...extra], iters },
    { name: 'demo-aifr', workers: 1, overrides: ['mode=aifr', ...extra], iters },
    { name: 'demo-fas', workers: 1, overrides: ['mode=fas', ...extra], iters },
    {
      name: 'ir50-112-aifr',
      workers: 1,
      overrides: [
        'mode=aifr',
        'model.arch=ir50',
        'model.input_size=112',
        'model.embedding_dim=512',
        'bucket_mb=25',
        ...extra,
      ],
      iters: Math.max(2, Math.round(iters / 5)),
    },
  ].filter((s) => !only || s.name.startsWith(only));
  if (!json) {
    console.log(
      'config          workers backend batch  img/s/worker  step ms  data ms  fwd+bwd ms  copy-out ms  peer wait ms (%)  exposed comm ms (%)  optimizer ms',
    );
    if (torchWhyNot) console.log(`(no pytorch rows: ${torchWhyNot})`);
  }
  for (const s of scenarios) {
    const results = await runScenario(s, dataDir, peerWait);
    const avg = (k: keyof WorkerResult) =>
      results.reduce((a, r) => a + (r[k] as number), 0) / results.length / s.iters;
    const stepMs = avg('stepMs');
    const row = {
      config: s.name,
      workers: s.workers,
      backend: results[0]!.backend,
      batch: results[0]!.batch,
      images_per_s_per_worker: (results[0]!.batch * 1000) / stepMs,
      step_ms: stepMs,
      data_wait_ms: avg('dataWaitMs'),
      forward_backward_ms: avg('computeMs'),
      copy_out_ms: avg('copyOutMs'),
      // Everything spent inside the gradient syncs' waits: peer wait + exposed communication.
      exposed_allreduce_ms: avg('exposedCommMs') + avg('peerWaitMs'),
      exposed_allreduce_pct: (100 * (avg('exposedCommMs') + avg('peerWaitMs'))) / stepMs,
      peer_wait_ms: avg('peerWaitMs'),
      peer_wait_pct: (100 * avg('peerWaitMs')) / stepMs,
      exposed_comm_ms: avg('exposedCommMs'),
      exposed_comm_pct: (100 * avg('exposedCommMs')) / stepMs,
      optimizer_ms: avg('optimizerMs'),
      allreduce_bytes_per_step: avg('bytes'),
      syncs: perSync(results, s.iters),
      overrides: s.overrides,
      iters: s.iters,
      pytorch: null as null | {
        threads: number;
        step_ms: number;
        fr_ms: number;
        fas_ms: number;
        peak_rss_mb: number;
        ours_over_pytorch: number;
      },
    };
    if (!torchWhyNot) {
      const t = await runTorch(python, s, results);
      const mean = (k: 'step_ms' | 'fr_ms' | 'fas_ms') => t.reduce((a, r) => a + r[k], 0) / t.length;
      row.pytorch = {
        threads: t[0]!.threads,
        step_ms: mean('step_ms'),
        fr_ms: mean('fr_ms'),
        fas_ms: mean('fas_ms'),
        peak_rss_mb: Math.max(...t.map((r) => r.peak_rss_mb)),
        ours_over_pytorch: stepMs / mean('step_ms'),
      };
    }
    if (json) console.log(JSON.stringify(row));
    else {
      const f = (x: number, w: number, d = 1) => x.toFixed(d).padStart(w);
      console.log(
        `${row.config.padEnd(15)} ${String(row.workers).padStart(7)} ${row.backend.padStart(7)} ${String(row.batch).padStart(5)} ${f(row.images_per_s_per_worker, 13, 2)} ${f(row.step_ms, 8, 0)} ${f(row.data_wait_ms, 8)} ${f(row.forward_backward_ms, 11, 0)} ${f(row.copy_out_ms, 12)} ${f(row.peer_wait_ms, 9)} (${row.peer_wait_pct.toFixed(1).padStart(4)}%) ${f(row.exposed_comm_ms, 12)} (${row.exposed_comm_pct.toFixed(1).padStart(4)}%) ${f(row.optimizer_ms, 13)}`,
      );
      for (const [name, t] of Object.entries(row.syncs))
        console.log(
          `  sync ${name.padEnd(6)} ${(t.bytes / 2 ** 20).toFixed(2).padStart(6)} MiB f32   copy-out ${f(t.copy_out_ms, 6)} ms   peer wait ${f(t.peer_wait_ms, 6)} ms   exposed comm ${f(t.exposed_comm_ms, 6)} ms`,
        );
      const p = row.pytorch;
      if (p)
        console.log(
          `  pytorch ${String(row.workers).padStart(13)} ${String(p.threads).padStart(2)} thr ${String(row.batch).padStart(5)} ${f((row.batch * 1000) / p.step_ms, 13, 2)} ${f(p.step_ms, 8, 0)}   (FR ${p.fr_ms.toFixed(0)} ms, FAS ${p.fas_ms.toFixed(0)} ms; peak RSS ${p.peak_rss_mb} MB)   ours / pytorch step time: ${p.ours_over_pytorch.toFixed(2)}×`,
        );
    }
  }
}

/** Per-sync averages over ranks and iterations (the JSON's `syncs`). */
function perSync(results: WorkerResult[], iters: number) {
  const out: Record<
    string,
    { bytes: number; copy_out_ms: number; peer_wait_ms: number; exposed_comm_ms: number }
  > = {};
  const n = results.length * iters;
  for (const r of results)
    for (const [name, t] of Object.entries(r.syncs)) {
      const o = (out[name] ??= { bytes: 0, copy_out_ms: 0, peer_wait_ms: 0, exposed_comm_ms: 0 });
      o.bytes += t.bytes / n;
      o.copy_out_ms += t.copyOutMs / n;
      o.peer_wait_ms += t.peerWaitMs / n;
      o.exposed_comm_ms += t.exposedCommMs / n;
    }
  return out;
}

if (args[0] === '--child') await child(JSON.parse(args[1]!) as ChildSpec);
else await main();
