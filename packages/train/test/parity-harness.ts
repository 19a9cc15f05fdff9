// Step parity with the release's algorithm: the same initial state and batches go to our Trainer and
// to fixtures/release_steps.py (PyTorch 1.13 under /usr/bin/python3, DDP over gloo at world size 2);
// both run K steps, and the per-step losses and final states are compared.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  encodeSafetensors,
  exportTorchState,
  rawFromFloat32,
  rawToFloat32,
  rawToInt32,
  readSafetensors,
  type RawTensor,
} from '@mtlface/model';
import { Trainer } from '../src/trainer.js';
import type { TrainConfig } from '../src/config.js';
import { localGroups, randomBatch, sliceBatch } from './helpers.js';
import { referenceConfig } from './fixtures/reference-config.js';
import type { FasBatch } from '@mtlface/data';

export const PYTHON = '/usr/bin/python3';
const SCRIPT = new URL('./fixtures/release_steps.py', import.meta.url).pathname;
const PYTHON_TIMEOUT_MS = 600_000;

export type RefDtype = 'F64' | 'F32';

export interface ParityCase {
  cfg: TrainConfig;
  worldSize: 1 | 2;
  steps: number;
  /** Global batch (split in contiguous halves at world size 2). */
  batch: number;
  classes: number;
}

/** One side's run: per rank, per-step losses and the final state (PyTorch names and layouts). */
export interface SideRun {
  losses: Record<string, number>[][];
  states: Map<string, Float64Array>[];
}

export interface Runs {
  init: Map<string, Float64Array>;
  /** Names of the trainable parameters (the rest of a state is buffers). */
  params: Set<string>;
  /**
   * Biases straight in front of a batch norm: the norm removes them, so their true gradient is 0 and
   * what they receive is rounding noise (which Adam scales up to a full step). Not compared.
   */
  noiseOnly: Set<string>;
  ours: SideRun;
  refs: Partial<Record<RefDtype, SideRun>>;
  /** Seconds each side took. */
  seconds: { ours: number } & Partial<Record<RefDtype, number>>;
}

function toFloat64(raw: RawTensor, name: string): Float64Array {
  if (raw.dtype === 'F64') {
    const dv = new DataView(raw.bytes.buffer, raw.bytes.byteOffset, raw.bytes.byteLength);
    return Float64Array.from({ length: raw.bytes.byteLength / 8 }, (_, i) => dv.getFloat64(i * 8, true));
  }
  if (raw.dtype === 'I64' || raw.dtype === 'I32') return Float64Array.from(rawToInt32(raw, name));
  return Float64Array.from(rawToFloat32(raw, name));
}

function toMap(tensors: Map<string, RawTensor>): Map<string, Float64Array> {
  return new Map([...tensors].map(([k, r]) => [k, toFloat64(r, k)]));
}

async function torchState(t: Trainer): Promise<Map<string, RawTensor>> {
  const out = new Map<string, RawTensor>();
  for (const [prefix, mod] of t.nets.modules())
    for (const [k, r] of await exportTorchState(mod, `${prefix}.`)) out.set(k, r);
  return out;
}

function batchTensors(batches: FasBatch[], fas: boolean): Map<string, RawTensor> {
  const out = new Map<string, RawTensor>();
  const f32 = (a: ArrayLike<number>) => Float32Array.from(a);
  batches.forEach((b, k) => {
    out.set(`${k}.images`, rawFromFloat32(b.images, [b.n, b.size, b.size, 3]));
    out.set(`${k}.labels`, rawFromFloat32(f32(b.labels), [b.n]));
    out.set(`${k}.ages`, rawFromFloat32(b.ages, [b.n]));
    if (fas) {
      out.set(`${k}.real`, rawFromFloat32(b.real.images, [b.n, b.size, b.size, 3]));
      out.set(`${k}.targets`, rawFromFloat32(f32(b.targetGroups), [b.n]));
    }
  });
  return out;
}

function runPython(dir: string, rank: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(PYTHON, [SCRIPT, dir, String(rank)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const timer = setTimeout(() => p.kill('SIGKILL'), PYTHON_TIMEOUT_MS);
    p.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`${PYTHON} ${SCRIPT}: ${e.message}; PyTorch 1.13 must be installed for ${PYTHON}`));
    });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else
        reject(
          new Error(
            `${PYTHON} ${SCRIPT} rank ${rank} failed (${signal ?? `status ${code}`}); PyTorch 1.13 must be ` +
              `installed for ${PYTHON} (scripts/install-system-deps.sh): ${stderr}`,
          ),
        );
    });
  });
}

async function reference(dir: string, c: ParityCase, dtype: RefDtype): Promise<SideRun> {
  writeFileSync(join(dir, 'config.json'), JSON.stringify(referenceConfig(c, dtype)));
  const ranks = Array.from({ length: c.worldSize }, (_, r) => r);
  await Promise.all(ranks.map((r) => runPython(dir, r)));
  const tag = dtype.toLowerCase();
  return {
    losses: ranks.map(
      (r) => (JSON.parse(readFileSync(join(dir, `out-${tag}-${r}.json`), 'utf8')) as SideRunJson).losses,
    ),
    states: ranks.map((r) => toMap(readSafetensors(join(dir, `final-${tag}-${r}.safetensors`)).tensors)),
  };
}

interface SideRunJson {
  losses: Record<string, number>[];
}

/** Runs our trainer and the PyTorch reference (in each dtype asked) from the same state and batches. */
export async function runBoth(c: ParityCase, dtypes: RefDtype[], storePort: number): Promise<Runs> {
  const { cfg } = c;
  const fas = cfg.mode !== 'aifr';
  const batches = Array.from({ length: c.steps }, (_, k) =>
    randomBatch(c.batch, cfg.model.input_size, c.classes, 1000 + k, cfg.model.groups),
  );
  const groups =
    c.worldSize > 1 ? await localGroups(storePort, `parity-${process.pid}-${Date.now()}`, c.worldSize) : null;
  const trainers = (groups ?? [null]).map((g) => new Trainer(cfg, { numClasses: c.classes, group: g }));
  const dir = mkdtempSync(join(tmpdir(), 'mtl-parity-'));
  try {
    for (const t of trainers.slice(1)) t.loadState(trainers[0]!.checkpointTensors(), null);
    const initRaw = await torchState(trainers[0]!);
    writeFileSync(join(dir, 'init.safetensors'), encodeSafetensors(initRaw));
    writeFileSync(join(dir, 'batches.safetensors'), encodeSafetensors(batchTensors(batches, fas)));
    const refs: Runs['refs'] = {};
    const seconds: Runs['seconds'] = { ours: 0 };
    for (const d of dtypes) {
      const t0 = performance.now();
      refs[d] = await reference(dir, c, d);
      seconds[d] = (performance.now() - t0) / 1000;
    }
    const t0 = performance.now();
    const per = c.batch / c.worldSize;
    const losses: Record<string, number>[][] = trainers.map(() => []);
    for (let k = 0; k < c.steps; k++) {
      const reports = await Promise.all(
        trainers.map((t, r) => t.step(sliceBatch(batches[k]!, r * per, (r + 1) * per), k)),
      );
      reports.forEach((rep, r) => losses[r]!.push(rep.losses));
    }
    seconds.ours = (performance.now() - t0) / 1000;
    const states = await Promise.all(trainers.map(async (t) => toMap(await torchState(t))));
    const params = new Set(
      trainers[0]!.nets.modules().flatMap(([p, m]) => m.namedParameters().map(([n]) => `${p}.${n}`)),
    );
    const noiseOnly = new Set(
      [...params].filter((n) => {
        const m = /^(.*)\.(\d+)\.bias$/.exec(n);
        return m !== null && initRaw.has(`${m[1]}.${Number(m[2]) + 1}.running_mean`);
      }),
    );
    return { init: toMap(initRaw), params, noiseOnly, ours: { losses, states }, refs, seconds };
  } finally {
    trainers.forEach((t) => t.dispose());
    await Promise.all((groups ?? []).map((g) => g.close()));
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface Diff {
  /** Per step: the largest |a − b| / max(|b|, lossFloor) over the ranks and losses. */
  lossPerStep: number[];
  lossWorst: string;
  /** Whole update of the parameters (w_K − w_0, every rank): ‖Δa − Δb‖ / ‖Δb‖ and the cosine. */
  updateRel: number;
  updateCosine: number;
  /** Per parameter tensor: ‖Δa_t − Δb_t‖ / max(‖Δb_t‖, ‖Δb‖·√(n_t / N)), the largest. */
  tensorRel: number;
  tensorWorst: string;
  /** Float buffers (running statistics, spectral-norm vectors), as the update: ‖Δa − Δb‖ / ‖Δb‖. */
  bufferRel: number;
  /** Integer buffers (batch counters) that differ at all. */
  counterMismatches: string[];
}

/** Compares run `a` with run `b` (the reference), rank by rank. */
export function compareRuns(runs: Runs, a: SideRun, b: SideRun, lossFloor: number): Diff {
  const steps = b.losses[0]!.length;
  const lossPerStep = Array.from({ length: steps }, () => 0);
  let lossWorst = '';
  b.losses.forEach((rankLosses, r) =>
    rankLosses.forEach((want, k) => {
      for (const [name, w] of Object.entries(want)) {
        const got = a.losses[r]![k]![name];
        if (got === undefined) throw new Error(`loss ${name} missing at step ${k} rank ${r}`);
        const rel = Math.abs(got - w) / Math.max(Math.abs(w), lossFloor);
        if (rel > lossPerStep[k]!) lossPerStep[k] = rel;
        if (rel >= Math.max(...lossPerStep)) lossWorst = `${name} step ${k} rank ${r}: ${got} vs ${w}`;
      }
    }),
  );
  let [pErr, pRef, pDot, pOurs] = [0, 0, 0, 0];
  let [bErr, bRef] = [0, 0];
  const tensors: { name: string; err: number; ref: number; n: number }[] = [];
  const counterMismatches: string[] = [];
  let total = 0;
  b.states.forEach((want, r) => {
    const got = a.states[r]!;
    for (const [name, w] of want) {
      const g = got.get(name);
      const w0 = runs.init.get(name);
      if (!g || !w0) throw new Error(`state tensor ${name} missing on rank ${r}`);
      if (name.endsWith('num_batches_tracked')) {
        if (g.some((v, i) => v !== w[i])) counterMismatches.push(`${name} rank ${r}: ${g[0]} vs ${w[0]}`);
        continue;
      }
      let [err, ref, dot, ours] = [0, 0, 0, 0];
      for (let i = 0; i < w.length; i++) {
        const dw = w[i]! - w0[i]!;
        const dg = g[i]! - w0[i]!;
        err += (dg - dw) ** 2;
        ref += dw * dw;
        dot += dg * dw;
        ours += dg * dg;
      }
      if (runs.noiseOnly.has(name)) continue;
      if (runs.params.has(name)) {
        [pErr, pRef, pDot, pOurs] = [pErr + err, pRef + ref, pDot + dot, pOurs + ours];
        tensors.push({ name: `${name} rank ${r}`, err, ref, n: w.length });
        total += w.length;
      } else {
        [bErr, bRef] = [bErr + err, bRef + ref];
      }
    }
  });
  let tensorRel = 0;
  let tensorWorst = '';
  for (const t of tensors) {
    const rel = Math.sqrt(t.err) / Math.max(Math.sqrt(t.ref), Math.sqrt((pRef * t.n) / total));
    if (rel > tensorRel) [tensorRel, tensorWorst] = [rel, t.name];
  }
  return {
    lossPerStep,
    lossWorst,
    updateRel: Math.sqrt(pErr / pRef),
    updateCosine: pDot / Math.sqrt(pRef * pOurs),
    tensorRel,
    tensorWorst,
    bufferRel: bRef > 0 ? Math.sqrt(bErr / bRef) : 0,
    counterMismatches,
  };
}
