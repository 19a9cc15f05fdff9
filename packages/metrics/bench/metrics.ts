/**
 * Metrics overhead benchmark.
 *
 *   node scripts/run-ts.mjs packages/metrics/bench/metrics.ts [--workers 1,2,4,8] [--scrapes 30] [--json]
 *
 * Part 1 (in process): the training loop's cost per iteration (recordIteration,
 * with and without a timeline file) and the cost/size of one worker snapshot.
 * Part 2: the launcher's /metrics latency with N live workers (the script-mode
 * test worker, stepping every 50 ms), median and p95 over --scrapes scrapes,
 * and the size of the exposition. --json prints one object per line.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LauncherMetrics, createWorkerMetrics } from '../src/index.js';

const argv = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
};
const json = argv.includes('--json');
const workerCounts = arg('--workers', '1,2,4,8').split(',').map(Number);
const scrapes = Number(arg('--scrapes', '30'));
const SCRIPT_WORKER = fileURLToPath(new URL('../test/fixtures/script-worker.ts', import.meta.url));

const rows: Record<string, unknown>[] = [];
const emit = (row: Record<string, unknown>) => {
  rows.push(row);
  if (json) console.log(JSON.stringify(row));
};
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

function report(i: number) {
  return {
    iteration: i,
    images: 64,
    stepSeconds: 0.2,
    dataWaitSeconds: 0.01,
    losses: { fr_id: 1 / (i + 1), fr_age: 0.5, fr_da: 0.3, fas_d: 0.2, fas_g: 0.4 },
    lr: { fr: 0.1, fas: 1e-4 },
    scale: { fr: 65536, fas: 65536 },
    skipped: [],
    timings: { computeMs: 150, copyOutMs: 10, exposedCommMs: 20, optimizerMs: 10 },
  };
}

// Part 1: per-iteration cost in the worker.
const dir = mkdtempSync(join(tmpdir(), 'mtl-bench-metrics-'));
try {
  for (const timeline of [null, join(dir, 'trace.json')]) {
    const m = createWorkerMetrics({ rank: 0, timeline, defaultMetrics: true });
    const n = 20_000;
    for (let i = 0; i < 1000; i++) m.recordIteration(report(i)); // warm-up
    const t0 = performance.now();
    for (let i = 0; i < n; i++) m.recordIteration(report(i));
    const us = ((performance.now() - t0) * 1000) / n;
    const s0 = performance.now();
    const snaps = 50;
    let bytes = 0;
    for (let i = 0; i < snaps; i++) bytes = JSON.stringify(await m.registry.getMetricsAsJSON()).length;
    emit({
      part: 'worker',
      timeline: timeline !== null,
      record_iteration_us: Number(us.toFixed(2)),
      snapshot_ms: Number(((performance.now() - s0) / snaps).toFixed(3)),
      snapshot_json_bytes: bytes,
    });
    await m.close();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

// Part 2: scrape latency through the launcher.
for (const n of workerCounts) {
  const lm = new LauncherMetrics({ host: '127.0.0.1', port: 0, nodeRank: 0, scrapeTimeoutMs: 5000 });
  await lm.listen();
  const children: ChildProcess[] = [];
  try {
    for (let rank = 0; rank < n; rank++) {
      const c = spawn(process.execPath, ['--conditions=mtl-source', '--import', 'tsx', SCRIPT_WORKER], {
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
        env: { ...process.env, RANK: String(rank), FIXTURE_STEP_MS: '50' },
      });
      children.push(c);
      lm.attachWorker(rank, c);
    }
    const url = `http://127.0.0.1:${lm.port}/metrics`;
    const deadline = Date.now() + 120_000;
    for (;;) {
      const text = await (await fetch(url)).text();
      if ((text.match(/^mtl_loss\{task="fr",name="id"/gm) ?? []).length === n) break;
      if (Date.now() > deadline) throw new Error(`bench: ${n} workers did not all report within 120 s`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const ms: number[] = [];
    let size = 0;
    let series = 0;
    for (let i = 0; i < scrapes; i++) {
      const t0 = performance.now();
      const text = await (await fetch(url)).text();
      ms.push(performance.now() - t0);
      size = text.length;
      series = text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
      await new Promise((r) => setTimeout(r, 50));
    }
    emit({
      part: 'scrape',
      workers: n,
      median_ms: Number(quantile(ms, 0.5).toFixed(2)),
      p95_ms: Number(quantile(ms, 0.95).toFixed(2)),
      exposition_bytes: size,
      series,
    });
  } finally {
    for (const c of children) c.kill('SIGKILL');
    await lm.close();
  }
}

if (!json) {
  console.log('worker side (per training iteration)');
  console.log('timeline  recordIteration µs  snapshot ms  snapshot JSON bytes');
  for (const r of rows.filter((r) => r.part === 'worker')) {
    console.log(
      `${String(r.timeline).padEnd(8)}  ${String(r.record_iteration_us).padStart(18)}  ${String(r.snapshot_ms).padStart(11)}  ${String(r.snapshot_json_bytes).padStart(19)}`,
    );
  }
  console.log('\nlauncher /metrics (workers stepping every 50 ms)');
  console.log('workers  median ms  p95 ms  exposition bytes  series');
  for (const r of rows.filter((r) => r.part === 'scrape')) {
    console.log(
      `${String(r.workers).padStart(7)}  ${String(r.median_ms).padStart(9)}  ${String(r.p95_ms).padStart(6)}  ${String(r.exposition_bytes).padStart(16)}  ${String(r.series).padStart(6)}`,
    );
  }
}
