import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { LaunchError } from './errors.js';
import { parseDeviceList } from './worker-env.js';

/** What the host offers, gathered once so that resolving `--nproc-per-node` stays pure. */
export interface HostResources {
  gpus: number;
  cpus: number;
}

/**
 * `--nproc-per-node N|auto|gpu|cpu` → a process count. auto: one per GPU, else 1; gpu: one per GPU,
 * an error without any; cpu: one per core.
 */
export function resolveNproc(spec: string, host: HostResources): number {
  const s = spec.trim().toLowerCase();
  if (s === 'auto') return host.gpus > 0 ? host.gpus : 1;
  if (s === 'gpu') {
    if (host.gpus === 0)
      throw new LaunchError('--nproc-per-node gpu: no GPU found (nvidia-smi -L lists none)');
    return host.gpus;
  }
  if (s === 'cpu') return host.cpus;
  if (!/^\d+$/.test(s)) {
    throw new LaunchError(`--nproc-per-node must be a positive integer, auto, gpu or cpu (got '${spec}')`);
  }
  const n = Number(s);
  if (n < 1) throw new LaunchError(`--nproc-per-node must be at least 1 (got ${spec})`);
  return n;
}

/** GPUs visible to this launcher: a CUDA_VISIBLE_DEVICES list the user set wins over `nvidia-smi -L`. */
export function countGpus(env: NodeJS.ProcessEnv = process.env): number {
  if (env.CUDA_VISIBLE_DEVICES !== undefined) return parseDeviceList(env.CUDA_VISIBLE_DEVICES).length;
  const r = spawnSync('nvidia-smi', ['-L'], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0 || typeof r.stdout !== 'string') return 0;
  return r.stdout.split('\n').filter((line) => line.startsWith('GPU ')).length;
}

export function probeHost(env: NodeJS.ProcessEnv = process.env): HostResources {
  return { gpus: countGpus(env), cpus: availableParallelism() };
}
