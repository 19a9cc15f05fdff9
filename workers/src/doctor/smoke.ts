// `mtl-doctor`'s live checks: which backends load, one forward/backward step on each compared with
// the CPU backend, and a 2-process all-reduce through mtl-launch (store, process group, transport).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { loadDawn, probeBackends, registerAllGradients } from '@mtlface/backend';
import type { AdapterReport } from '@mtlface/backend';
import type { Check, Selected } from './checks.js';

/** Every backend with whether it loads here; the selected one failing to load is a failure. */
export async function backendChecks(selected: Selected): Promise<{ checks: Check[]; loaded: string[] }> {
  const probes = await probeBackends();
  const checks: Check[] = probes.map((p) => ({
    section: 'backends',
    name: p.name,
    status: p.available ? 'ok' : p.name === selected.backend ? 'fail' : 'info',
    detail: p.available ? `loads: ${p.detail}` : p.detail,
  }));
  const loaded = probes.filter((p) => p.available).map((p) => p.name);
  const webgpu = probes.find((p) => p.name === 'webgpu');
  if (webgpu?.available) {
    const dawn = await loadDawn();
    if (dawn.ok)
      checks.push({
        section: 'backends',
        name: 'webgpu adapter',
        status: 'info',
        detail: `${adapterReport(dawn.adapter)}; ${webgpu.auto ? 'auto may take it' : 'auto passes it over: a software adapter runs on the CPU (use --backend webgpu to test on it)'}`,
      });
  }
  if (selected.backend === 'auto')
    checks.push({
      section: 'backends',
      name: 'auto',
      status: 'info',
      detail: `would use ${probes.find((p) => p.auto)?.name ?? 'none'}`,
    });
  return { checks, loaded };
}

const MiB = 2 ** 20;

/** Vendor, architecture, device and the limits that bound tensor sizes and shared-memory tiling. */
export function adapterReport(a: AdapterReport): string {
  const l = a.limits;
  return [
    `vendor ${a.vendor || '?'}, architecture ${a.architecture || '?'}, device ${a.device || '?'}`,
    a.software ? 'software (CPU)' : 'hardware',
    `maxBufferSize ${(l.maxBufferSize / MiB).toFixed(0)} MiB`,
    `maxStorageBufferBindingSize ${(l.maxStorageBufferBindingSize / MiB).toFixed(0)} MiB`,
    `maxComputeWorkgroupStorageSize ${l.maxComputeWorkgroupStorageSize / 1024} KiB`,
    `maxComputeInvocationsPerWorkgroup ${l.maxComputeInvocationsPerWorkgroup}`,
    `maxComputeWorkgroupsPerDimension ${l.maxComputeWorkgroupsPerDimension}`,
  ].join(', ');
}

/** Deterministic values in [-1, 1) (a 32-bit LCG), so every backend sees the same inputs. */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

const B = 2;
const X = values(B * 16 * 16 * 3, 1);
const W1 = values(3 * 3 * 3 * 8, 2).map((v) => v * 0.3);
const W2 = values(3 * 3 * 8 * 16, 3).map((v) => v * 0.2);
const W3 = values(16 * 10, 4).map((v) => v * 0.3);

/**
 * One training step's arithmetic on the active backend: two convolutions (the second strided), a
 * ReLU, global average pooling, a dense layer and softmax cross-entropy; returns the loss and the
 * gradients of the three weights. Leaves no tensor behind. Reads back asynchronously: webgpu in
 * Node has no synchronous read-back.
 */
export async function smokeStep(): Promise<Float32Array[]> {
  const outs = tf.tidy(() => {
    const x = tf.tensor4d(X, [B, 16, 16, 3]);
    const labels = tf.oneHot(tf.tensor1d([3, 7], 'int32'), 10);
    const loss = (w1: tf.Tensor, w2: tf.Tensor, w3: tf.Tensor): tf.Scalar => {
      const h1 = tf.relu(tf.conv2d(x, w1 as tf.Tensor4D, 1, 'same'));
      const h2 = tf.relu(tf.conv2d(h1, w2 as tf.Tensor4D, 2, 'same'));
      const logits = tf.matMul(tf.mean(h2, [1, 2]), w3 as tf.Tensor2D);
      return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
    };
    const { value, grads } = tf.valueAndGrads(loss)([
      tf.tensor4d(W1, [3, 3, 3, 8]),
      tf.tensor4d(W2, [3, 3, 8, 16]),
      tf.tensor2d(W3, [16, 10]),
    ]);
    return [value, ...grads];
  });
  const values = await Promise.all(outs.map((t) => t.data() as Promise<Float32Array>));
  tf.dispose(outs);
  return values;
}

/** max |a − b| / max |b| over each pair of outputs (a norm-wise relative difference). */
export function maxRelativeDifference(a: Float32Array[], b: Float32Array[]): number {
  let worst = 0;
  for (const [k, ref] of b.entries()) {
    const got = a[k]!;
    let diff = 0;
    let scale = 0;
    for (let i = 0; i < ref.length; i++) {
      diff = Math.max(diff, Math.abs(got[i]! - ref[i]!));
      scale = Math.max(scale, Math.abs(ref[i]!));
    }
    worst = Math.max(worst, diff / Math.max(scale, 1e-30));
  }
  return worst;
}

/** f32 kernels that differ only in summation order agree far closer than this. */
export const SMOKE_TOLERANCE = 1e-3;

/** The step on every loaded backend against the pure-JavaScript `cpu` backend, the reference. */
export async function backendSmoke(loaded: string[]): Promise<Check[]> {
  registerAllGradients();
  await tf.setBackend('cpu');
  const reference = await smokeStep();
  const checks: Check[] = [];
  for (const name of loaded.filter((n) => n !== 'cpu')) {
    const check = { section: 'smoke', name: `step on ${name}` };
    try {
      await tf.setBackend(name);
      const before = tf.memory().numTensors;
      const t0 = performance.now();
      const got = await smokeStep();
      const ms = performance.now() - t0;
      const leaked = tf.memory().numTensors - before;
      const diff = maxRelativeDifference(got, reference);
      const ok = diff <= SMOKE_TOLERANCE && leaked === 0 && got.every((g) => g.every(Number.isFinite));
      checks.push({
        ...check,
        status: ok ? 'ok' : 'fail',
        detail:
          `max relative difference from cpu ${diff.toExponential(2)} (tolerance ${SMOKE_TOLERANCE}), ${ms.toFixed(0)} ms` +
          (leaked !== 0 ? `, ${leaked} tensor(s) leaked` : ''),
      });
    } catch (e) {
      checks.push({ ...check, status: 'fail', detail: `failed: ${(e as Error).message.split('\n')[0]}` });
    }
  }
  await tf.setBackend('cpu');
  return checks;
}

const FROM_SOURCE = import.meta.url.endsWith('.ts');

/** A 2-worker all-reduce, started the way training starts: mtl-launch --standalone --nproc 2. */
export function allReduceSmoke(timeoutMs = 120_000): Promise<Check> {
  const rel = (p: string): string => fileURLToPath(new URL(p, import.meta.url));
  const launcher = rel(FROM_SOURCE ? '../../../launcher/src/cli.ts' : '../../../launcher/dist/cli.js');
  const worker = rel(`./allreduce-worker.${FROM_SOURCE ? 'ts' : 'js'}`);
  // From source, the launcher runs under the same flags as this process (conditions, TypeScript loader).
  const node = FROM_SOURCE ? process.execArgv : [];
  const argv = [...node, launcher, '--standalone', '--nproc', '2', worker];
  const check = { section: 'smoke', name: 'all-reduce, 2 processes' };
  return new Promise((resolve) => {
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const m = /allreduce ok (.*)$/m.exec(out);
      if (code === 0 && m) return resolve({ ...check, status: 'ok', detail: m[1]! });
      const last = err.trim().split('\n').filter(Boolean).slice(-2).join(' | ');
      resolve({
        ...check,
        status: 'fail',
        detail: `mtl-launch exited with ${signal ?? code}${signal === 'SIGTERM' ? ` after ${timeoutMs / 1000}s` : ''}: ${last || out.trim()}`,
      });
    });
  });
}
