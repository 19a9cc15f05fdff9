// Dawn (the `webgpu` npm package, Chrome's WebGPU in a Node addon) as the `navigator.gpu` that
// tfjs-backend-webgpu expects, and what the adapter it gives is. tfjs-backend-webgpu registers its
// backend at import time only when `navigator.gpu` exists, and its kernels use the WebGPU globals
// (GPUBufferUsage, GPUMapMode, GPUTextureUsage …), so both are set before it is imported.

/** The adapter Dawn offers, as `mtl-doctor` and the backend's log line report it. */
export interface AdapterReport {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A CPU implementation (lavapipe, SwiftShader, WARP): the WebGPU fallback adapter. */
  software: boolean;
  limits: {
    maxBufferSize: number;
    maxStorageBufferBindingSize: number;
    maxComputeWorkgroupStorageSize: number;
    maxComputeInvocationsPerWorkgroup: number;
    maxComputeWorkgroupsPerDimension: number;
  };
}

export type DawnResult = { ok: true; adapter: AdapterReport } | { ok: false; reason: string };

interface GpuAdapterLike {
  info?: Record<string, unknown>;
  isFallbackAdapter?: boolean;
  limits: Record<string, number>;
}
interface GpuLike {
  requestAdapter(o?: { powerPreference?: string }): Promise<GpuAdapterLike | null>;
}

const ADAPTER_TIMEOUT_MS = 30_000;

/** Software rasterisers that present themselves as Vulkan devices. */
const SOFTWARE_DEVICE = /llvmpipe|lavapipe|swiftshader|warp|software/i;

export function describeAdapter(adapter: GpuAdapterLike): AdapterReport {
  const info = adapter.info ?? {};
  const text = (k: string) => (typeof info[k] === 'string' ? (info[k] as string) : '');
  const [vendor, architecture, device, description] = ['vendor', 'architecture', 'device', 'description'].map(
    text,
  ) as [string, string, string, string];
  const fallback = info.isFallbackAdapter === true || adapter.isFallbackAdapter === true;
  const l = adapter.limits;
  return {
    vendor,
    architecture,
    device,
    description,
    software: fallback || architecture === 'software' || SOFTWARE_DEVICE.test(`${device} ${description}`),
    limits: {
      maxBufferSize: l.maxBufferSize ?? 0,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize ?? 0,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize ?? 0,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup ?? 0,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension ?? 0,
    },
  };
}

/** One line naming the adapter: `mesa software llvmpipe-… (software, CPU)`. */
export function adapterLine(a: AdapterReport): string {
  const name = [a.vendor, a.architecture, a.device].filter(Boolean).join(' ') || a.description || 'unnamed';
  return `${name}${a.software ? ' (software adapter, runs on the CPU)' : ''}`;
}

let loaded: Promise<DawnResult> | null = null;

/**
 * Starts Dawn once per process and asks it for the high-performance adapter; on
 * success, `navigator.gpu` and the WebGPU globals are set for tfjs-backend-webgpu.
 * Failure is one line saying what is missing and what installs it.
 */
export function loadDawn(): Promise<DawnResult> {
  loaded ??= start();
  return loaded;
}

async function start(): Promise<DawnResult> {
  let dawn: { create(flags: string[]): GpuLike; globals: Record<string, unknown> };
  try {
    dawn = (await import('webgpu')) as unknown as typeof dawn;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND')
      return { ok: false, reason: 'webgpu (Dawn for Node) is not installed (run `npm ci`)' };
    return { ok: false, reason: `webgpu (Dawn for Node) failed to load: ${firstLine(err)}` };
  }
  let adapter: GpuAdapterLike | null;
  const gpu = dawn.create([]);
  try {
    adapter = await withTimeout(
      gpu.requestAdapter({ powerPreference: 'high-performance' }),
      ADAPTER_TIMEOUT_MS,
    );
  } catch (err) {
    return { ok: false, reason: `Dawn could not enumerate adapters: ${firstLine(err)}` };
  }
  if (!adapter)
    return {
      ok: false,
      reason:
        'Dawn found no WebGPU adapter: no Vulkan driver (a GPU driver with Vulkan, or lavapipe: scripts/install-system-deps.sh installs libvulkan1 and mesa-vulkan-drivers)',
    };
  for (const [k, v] of Object.entries(dawn.globals))
    if (!(k in globalThis)) Object.assign(globalThis, { [k]: v });
  const nav = (globalThis as { navigator?: object }).navigator;
  if (nav) Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true });
  else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  return { ok: true, adapter: describeAdapter(adapter) };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms);
    timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

const firstLine = (err: unknown) => (err instanceof Error ? err.message.split('\n')[0]! : String(err));
