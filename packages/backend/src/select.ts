import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { availableParallelism } from 'node:os';
import { loadDnnlAddon } from './native/addon.js';
import { tensorflowBindingMissing } from './installed.js';
import { registerNativeBackend } from './native/register.js';
import { installLeanBackprop } from './lean-backprop.js';
import { registerAllGradients } from './gradients.js';
import { registerWasmFixes } from './wasm/register.js';
import { registerWebgpuBackend } from './webgpu/register.js';
import { adapterLine, gpuDeviceNodes } from './webgpu/dawn.js';

export const BACKEND_NAMES = ['tensorflow', 'webgpu', 'native', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];
export const BACKEND_CHOICES = ['auto', ...BACKEND_NAMES] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

/** Validates a `--backend` flag or `backend:` config value. */
export function parseBackendChoice(value: string, where = 'backend'): BackendChoice {
  if ((BACKEND_CHOICES as readonly string[]).includes(value)) return value as BackendChoice;
  throw new Error(`${where}: unknown backend '${value}' (expected one of ${BACKEND_CHOICES.join(', ')})`);
}

export interface InitBackendOptions {
  backend: BackendChoice;
  /** Where the one line about the choice goes (default: console.log, rank-prefixed when RANK is set). */
  log?: (line: string) => void;
  /** Environment to read (RANK, LOCAL_RANK, LOCAL_WORLD_SIZE, CUDA_VISIBLE_DEVICES, OMP_NUM_THREADS); default process.env. */
  env?: NodeJS.ProcessEnv;
}

export interface BackendChoiceResult {
  name: BackendName;
  /** Why this one: what it is, and why each better one was not taken. */
  reason: string;
}

/**
 * GPU pinning for a worker: the launcher sets CUDA_VISIBLE_DEVICES per worker
 * (kept as is); a worker started without it but with LOCAL_RANK gets its
 * local rank's GPU. Must run before the TensorFlow binding loads.
 */
export function gpuPinning(
  env: NodeJS.ProcessEnv,
): { devices: string; source: 'CUDA_VISIBLE_DEVICES' | 'LOCAL_RANK' } | null {
  const set = env.CUDA_VISIBLE_DEVICES;
  if (set !== undefined && set !== '') return { devices: set, source: 'CUDA_VISIBLE_DEVICES' };
  const lr = env.LOCAL_RANK;
  if (lr !== undefined && /^\d+$/.test(lr)) return { devices: lr, source: 'LOCAL_RANK' };
  return null;
}

/**
 * oneDNN threads per worker: OMP_NUM_THREADS when set, else the cores divided
 * among the node's workers (LOCAL_WORLD_SIZE), at least 1.
 */
export function cpuThreads(env: NodeJS.ProcessEnv, cores = availableParallelism()): number {
  const set = Number(env.OMP_NUM_THREADS);
  if (Number.isInteger(set) && set > 0) return set;
  const workers = Number(env.LOCAL_WORLD_SIZE);
  return Math.max(1, Math.floor(cores / (Number.isInteger(workers) && workers > 0 ? workers : 1)));
}

type Attempt = { ok: true; detail: string } | { ok: false; reason: string };

const errText = (err: unknown) => (err instanceof Error ? err.message.split('\n')[0]! : String(err));

async function importOptional(name: string): Promise<Attempt> {
  if (name.startsWith('@tensorflow/tfjs-node')) {
    const missing = tensorflowBindingMissing(name);
    if (missing) return { ok: false, reason: missing };
  }
  try {
    await import(name);
    return { ok: true, detail: name };
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND')
      return { ok: false, reason: `${name} is not installed` };
    return { ok: false, reason: `${name} failed to load: ${errText(err)}` };
  }
}

async function activate(name: BackendName): Promise<Attempt> {
  try {
    if (tf.findBackendFactory(name) === null) return { ok: false, reason: `${name} is not registered` };
    return (await tf.setBackend(name))
      ? { ok: true, detail: name }
      : { ok: false, reason: `${name} failed to initialise` };
  } catch (err) {
    return { ok: false, reason: `${name} failed to initialise: ${errText(err)}` };
  }
}

/**
 * Tries to make `name` available (loading/registering it) without switching to it.
 * `auto` declines what loads but should not be picked unasked (webgpu on a software adapter).
 */
async function prepare(name: BackendName, env: NodeJS.ProcessEnv, auto = false): Promise<Attempt> {
  switch (name) {
    case 'tensorflow': {
      if (tf.findBackendFactory('tensorflow') !== null) return { ok: true, detail: 'already loaded' };
      const pin = gpuPinning(env);
      if (pin && pin.source === 'LOCAL_RANK') process.env.CUDA_VISIBLE_DEVICES = pin.devices;
      const gpu = await importOptional('@tensorflow/tfjs-node-gpu');
      if (gpu.ok) return { ok: true, detail: `GPU binding, CUDA_VISIBLE_DEVICES=${pin?.devices ?? '(all)'}` };
      const cpu = await importOptional('@tensorflow/tfjs-node');
      if (cpu.ok) return { ok: true, detail: `CPU binding (${gpu.reason})` };
      return { ok: false, reason: `${gpu.reason}, ${cpu.reason}` };
    }
    case 'webgpu': {
      if (auto && gpuDeviceNodes()?.length === 0)
        return {
          ok: false,
          reason: 'no GPU device (/dev/nvidia*, /dev/dri/renderD*); auto takes webgpu only on a GPU',
        };
      const r = await registerWebgpuBackend();
      if (!r.ok) return r;
      if (auto && r.adapter.software)
        return {
          ok: false,
          reason: `Dawn's adapter is ${adapterLine(r.adapter)}; auto takes webgpu only on a GPU (--backend webgpu uses it anyway)`,
        };
      return r;
    }
    case 'native': {
      if (env.OMP_NUM_THREADS === undefined) process.env.OMP_NUM_THREADS = String(cpuThreads(env));
      const r = registerNativeBackend();
      if (!r.ok) return { ok: false, reason: `native: ${r.reason}` };
      return {
        ok: true,
        detail: `oneDNN ${loadDnnlAddon().addon?.version()}, ${process.env.OMP_NUM_THREADS} threads`,
      };
    }
    case 'wasm': {
      const r = await importOptional('@tensorflow/tfjs-backend-wasm');
      if (!r.ok) return r;
      registerWasmFixes();
      return { ok: true, detail: 'single-threaded WebAssembly' };
    }
    case 'cpu':
      return { ok: true, detail: 'pure JavaScript' };
  }
}

export interface BackendProbe {
  name: BackendName;
  /** Loads here (an explicit choice of it works). */
  available: boolean;
  /** `auto` would consider it: it loads and is not declined (webgpu on a software adapter is). */
  auto: boolean;
  /** What it is when available, else why not; for webgpu on a software adapter, why auto passes it over. */
  detail: string;
}

/** Every backend in `auto` order with whether it loads here and why not (for benchmarks, tests, mtl-doctor). */
export async function probeBackends(env: NodeJS.ProcessEnv = process.env): Promise<BackendProbe[]> {
  const out: BackendProbe[] = [];
  for (const name of BACKEND_NAMES) {
    const r = await prepare(name, env);
    const a = r.ok ? await prepare(name, env, true) : r;
    const detail = r.ok
      ? a.ok
        ? r.detail
        : `${r.detail}; auto passes it over (it takes webgpu only on a GPU adapter)`
      : r.reason;
    out.push({ name, available: r.ok, auto: a.ok, detail });
  }
  return out;
}

/** Names of the backends that load here, best first. */
export async function listBackends(env: NodeJS.ProcessEnv = process.env): Promise<BackendName[]> {
  return (await probeBackends(env)).filter((b) => b.available).map((b) => b.name);
}

function defaultLog(env: NodeJS.ProcessEnv): (line: string) => void {
  const prefix = env.RANK !== undefined ? `[rank ${env.RANK}] ` : '';
  return (line) => console.log(prefix + line);
}

/**
 * Sets the tfjs backend for this process. `auto` takes the first that works of
 * tensorflow (GPU binding, then CPU binding), webgpu (on a GPU adapter only), native, wasm, cpu; an explicit
 * choice that cannot load is an error. Registers all op gradients. Logs one line.
 */
export async function initBackend(opts: InitBackendOptions): Promise<BackendChoiceResult> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? defaultLog(env);
  const choice = parseBackendChoice(opts.backend);
  registerAllGradients();
  installLeanBackprop(env);
  const candidates: readonly BackendName[] = choice === 'auto' ? BACKEND_NAMES : [choice];
  const skipped: string[] = [];
  for (const name of candidates) {
    const prepared = await prepare(name, env, choice === 'auto');
    const active = prepared.ok ? await activate(name) : prepared;
    if (prepared.ok && active.ok) {
      const why = skipped.length > 0 ? `; not ${skipped.join('; not ')}` : '';
      const reason = `${name} (${prepared.detail})${choice === 'auto' ? why : ', as requested'}`;
      log(`backend: ${reason}`);
      return { name, reason };
    }
    skipped.push(`${name}: ${active.ok ? '' : active.reason}`);
  }
  throw new Error(`backend '${choice}' is unavailable: ${skipped.join('; ')}`);
}
