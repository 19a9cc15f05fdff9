// What `mtl-doctor` looks at on this machine, in the spirit of PyTorch's collect_env: each check is
// one line (section, name, status, detail). Only a `fail` makes the selected configuration unable
// to run; `warn` is slower or a fallback, `info` is for the report.
import { execFileSync } from 'node:child_process';
import { readdirSync, realpathSync, statfsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { availableParallelism, cpus, release } from 'node:os';
import { basename, join } from 'node:path';
import { backendMissing, tensorflowBindingMissing } from '@mtlface/backend/installed';
import { loadDnnlAddon } from '@mtlface/backend';
import type * as Collective from '@mtlface/collective';

export type Status = 'ok' | 'warn' | 'fail' | 'info';
export interface Check {
  section: string;
  name: string;
  status: Status;
  detail: string;
}

/** The configuration the user means to run, which decides what is a failure. */
export interface Selected {
  backend: string;
  nproc: number;
  masterAddr: string;
  /** 0: a free port is taken at start (`--standalone`), nothing to check. */
  masterPort: number;
}

const require = createRequire(import.meta.url);
const MIN_NODE = [20, 11];

export function nodeCheck(version = process.versions.node): Check {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const ok = major > MIN_NODE[0]! || (major === MIN_NODE[0] && minor >= MIN_NODE[1]!);
  return {
    section: 'system',
    name: 'node',
    status: ok ? 'ok' : 'fail',
    detail: `v${version}${ok ? '' : ` (mtlface needs >= ${MIN_NODE.join('.')})`}`,
  };
}

export function systemChecks(): Check[] {
  const info = (name: string, detail: string): Check => ({ section: 'system', name, status: 'info', detail });
  return [
    nodeCheck(),
    info('os', `${process.platform} ${release()} ${process.arch}`),
    info('cpu', `${cpus()[0]?.model ?? 'unknown'}, ${availableParallelism()} cores available`),
  ];
}

const TFJS_PACKAGES = [
  '@tensorflow/tfjs-core',
  '@tensorflow/tfjs-backend-cpu',
  '@tensorflow/tfjs-backend-wasm',
  '@tensorflow/tfjs-node',
  '@tensorflow/tfjs-node-gpu',
];

/** Installed version of a package as this project resolves it (from the backend package), or null. */
function installedVersion(name: string): string | null {
  const from = createRequire(require.resolve('@mtlface/backend/installed'));
  try {
    return (from(`${name}/package.json`) as { version: string }).version;
  } catch {
    return null;
  }
}

export function packageChecks(): Check[] {
  return TFJS_PACKAGES.map((name) => {
    const v = installedVersion(name);
    const binding =
      name.startsWith('@tensorflow/tfjs-node') && v !== null ? tensorflowBindingMissing(name) : null;
    return {
      section: 'tfjs',
      name,
      status: 'info' as const,
      detail: v === null ? 'not installed' : `${v}${binding ? ` — ${binding}` : ''}`,
    };
  });
}

/** `nvidia-smi`'s GPUs and driver; none is not a failure (CPU backends run anywhere). */
export function gpuChecks(run: typeof execFileSync = execFileSync): Check[] {
  let out: string;
  try {
    out = run('nvidia-smi', ['--query-gpu=index,name,driver_version,memory.total', '--format=csv,noheader'], {
      encoding: 'utf8',
      timeout: 10_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    }) as string;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return [
      {
        section: 'gpu',
        name: 'nvidia-smi',
        status: 'info',
        detail:
          code === 'ENOENT'
            ? 'not found: no NVIDIA driver on this machine'
            : `failed: ${(e as Error).message.split('\n')[0]}`,
      },
    ];
  }
  const rows = out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(',').map((s) => s.trim()));
  if (rows.length === 0)
    return [{ section: 'gpu', name: 'nvidia-smi', status: 'info', detail: 'no GPU listed' }];
  return rows.map(([index, name, driver, memory]) => ({
    section: 'gpu',
    name: `gpu ${index}`,
    status: 'ok' as const,
    detail: `${name}, ${memory}, driver ${driver}`,
  }));
}

/**
 * The shared libraries @tensorflow/tfjs-node-gpu 4.x loads: libtensorflow 2.9.1 was built against
 * CUDA 11.2 and cuDNN 8.1, and asks for these sonames (other CUDA majors do not satisfy them).
 */
export const CUDA_SONAMES = [
  'libcudart.so.11.0',
  'libcublas.so.11',
  'libcublasLt.so.11',
  'libcufft.so.10',
  'libcurand.so.10',
  'libcusolver.so.11',
  'libcusparse.so.11',
  'libcudnn.so.8',
];

/** soname → full path, from `ldconfig -p` and LD_LIBRARY_PATH (what the dynamic loader searches). */
export function libraryIndex(
  env: NodeJS.ProcessEnv = process.env,
  ldconfig: () => string = () => execFileSync('ldconfig', ['-p'], { encoding: 'utf8', timeout: 10_000 }),
): Map<string, string> {
  const index = new Map<string, string>();
  for (const dir of (env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean)) {
    try {
      for (const f of readdirSync(dir)) if (f.includes('.so')) index.set(f, join(dir, f));
    } catch {
      // a missing directory on the path is the loader's business, not ours
    }
  }
  let text = '';
  try {
    text = ldconfig();
  } catch {
    // no ldconfig (not glibc): LD_LIBRARY_PATH is all we know
  }
  for (const m of text.matchAll(/^\s*(\S+) \([^)]*\) => (\S+)$/gm))
    if (!index.has(m[1]!)) index.set(m[1]!, m[2]!);
  return index;
}

/** The version a library file carries in its real name (libcudnn.so.8 → libcudnn.so.8.1.1 → 8.1.1). */
function fileVersion(path: string): string {
  let real = path;
  try {
    real = realpathSync(path);
  } catch {
    // a dangling link: its own name is all there is
  }
  const m = /\.so\.([\d.]+)$/.exec(basename(real));
  return m ? m[1]! : basename(real);
}

/** One line per library tfjs-node-gpu needs (CUDA 11.2, cuDNN 8.1): a failure only for a GPU run. */
export function cudaChecks(index: Map<string, string>, selected: Selected): Check[] {
  const gpuWanted =
    selected.backend === 'tensorflow' && tensorflowBindingMissing('@tensorflow/tfjs-node-gpu') === null;
  return CUDA_SONAMES.map((soname) => {
    const path = index.get(soname);
    if (path)
      return {
        section: 'cuda',
        name: soname,
        status: 'ok' as const,
        detail: `${fileVersion(path)} (${path})`,
      };
    const stem = soname.slice(0, soname.indexOf('.so') + 3);
    const others = [...index.keys()].filter((k) => k.startsWith(stem + '.') && k !== soname);
    return {
      section: 'cuda',
      name: soname,
      // Only a GPU run needs them; it fails to load without them.
      status: gpuWanted ? ('fail' as const) : ('info' as const),
      detail: `not found${others.length ? ` (found ${others.join(', ')}: another major version)` : ''}`,
    };
  });
}

export function dnnlCheck(): Check {
  const { addon, reason } = loadDnnlAddon();
  return addon
    ? { section: 'native', name: 'oneDNN addon', status: 'ok', detail: `oneDNN ${addon.version()}` }
    : { section: 'native', name: 'oneDNN addon', status: 'info', detail: reason };
}

/** What the shared-memory rings need on one node (packages/collective/README.md): 8 MiB × ranks × 2. */
export function shmBytesNeeded(nproc: number): number {
  return nproc > 1 ? 8 * 2 ** 20 * nproc * 2 : 0;
}

export function shmCheck(nproc: number, dir = '/dev/shm'): Check {
  const need = shmBytesNeeded(nproc);
  const mib = (b: number): string => `${(b / 2 ** 20).toFixed(0)} MiB`;
  let size: number;
  try {
    const s = statfsSync(dir);
    size = s.bsize * s.blocks;
  } catch (e) {
    return {
      section: 'collective',
      name: dir,
      status: 'warn',
      detail: `unusable (${(e as Error).message}): workers fall back to unix sockets`,
    };
  }
  if (size >= need)
    return {
      section: 'collective',
      name: dir,
      status: 'ok',
      detail: `${mib(size)} (${nproc} worker(s) need ${mib(need)})`,
    };
  return {
    section: 'collective',
    name: dir,
    status: 'warn',
    detail: `${mib(size)}, but ${nproc} workers need ${mib(need)}: rings that do not fit fall back to unix sockets (slower); give the container shm_size ≥ ${mib(need)} or ipc: host`,
  };
}

/** Whether the store could listen on `host:port` now. */
export function portCheck(host: string, port: number): Promise<Check> {
  if (port === 0)
    return Promise.resolve({
      section: 'collective',
      name: 'store port',
      status: 'info',
      detail: 'a free port is chosen at start (--master-port 0)',
    });
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', (e: NodeJS.ErrnoException) =>
      resolve({
        section: 'collective',
        name: 'store port',
        status: 'fail',
        detail: `${host}:${port} ${e.code === 'EADDRINUSE' ? 'is in use (another run, or another service): choose --master-port' : `cannot be bound: ${e.message}`}`,
      }),
    );
    srv.listen(port, host, () =>
      srv.close(() =>
        resolve({
          section: 'collective',
          name: 'store port',
          status: 'ok',
          detail: `${host}:${port} is free`,
        }),
      ),
    );
  });
}

export async function collectiveChecks(): Promise<Check[]> {
  let collective: typeof Collective;
  try {
    collective = await import('@mtlface/collective');
  } catch (e) {
    const why = (e as Error).message.split('\n')[0];
    return [
      {
        section: 'collective',
        name: 'collective',
        status: 'fail',
        detail: `does not load (ZeroMQ, msgpackr): ${why}`,
      },
    ];
  }
  const why = collective.nativeAddonMissing();
  return [
    {
      section: 'collective',
      name: 'collective',
      status: 'ok',
      detail: `loads (ZeroMQ engine included), element kernels: ${collective.KERNELS}`,
    },
    why === ''
      ? {
          section: 'collective',
          name: 'collective addon',
          status: 'ok',
          detail: 'built (mmap rings, AVX2 wire kernels)',
        }
      : {
          section: 'collective',
          name: 'collective addon',
          status: 'warn',
          detail: `${why}: portable fallbacks are used (slower)`,
        },
  ];
}

/** The selected backend: installed at all (the smoke test and the backend list say whether it loads). */
export function selectedBackendCheck(selected: Selected): Check {
  const missing = backendMissing(selected.backend);
  return missing
    ? { section: 'backends', name: `selected: ${selected.backend}`, status: 'fail', detail: missing }
    : { section: 'backends', name: `selected: ${selected.backend}`, status: 'ok', detail: 'installed' };
}
