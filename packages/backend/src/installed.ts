// Whether a backend is installed here, without loading tfjs or the backend itself: cheap enough for
// the launcher to check a config's `backend:` before it starts any worker, and for `mtl-doctor`.
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { loadDnnlAddon } from './native/addon.js';

const require = createRequire(import.meta.url);

/**
 * The TensorFlow bindings install their JavaScript even when the download of
 * libtensorflow fails; importing such a half-installed package costs seconds
 * and then throws, so look for the compiled binding first.
 */
export function tensorflowBindingMissing(name: string): string | null {
  let dir: string;
  try {
    dir = dirname(require.resolve(`${name}/package.json`));
  } catch {
    return `${name} is not installed`;
  }
  const lib = join(dir, 'lib');
  const found =
    existsSync(lib) &&
    readdirSync(lib).some((d) => d.startsWith('napi-v') && existsSync(join(lib, d, 'tfjs_binding.node')));
  return found
    ? null
    : `${name} is installed without its native binding (its install script did not fetch libtensorflow)`;
}

/**
 * Null when `name` (a backend or `auto`) can be tried here, else why not, with what installs it.
 * Installed is not loaded: a binding whose CUDA libraries are missing fails only at import
 * (`mtl-doctor` imports it).
 */
export function backendMissing(name: string): string | null {
  switch (name) {
    case 'auto':
    case 'cpu':
      return null;
    case 'tensorflow': {
      const gpu = tensorflowBindingMissing('@tensorflow/tfjs-node-gpu');
      const cpu = tensorflowBindingMissing('@tensorflow/tfjs-node');
      return gpu && cpu
        ? `${gpu}; ${cpu} (install one: \`npm install @tensorflow/tfjs-node-gpu\`, or use backend=auto)`
        : null;
    }
    case 'native':
      return loadDnnlAddon().reason ?? null;
    case 'wasm':
      try {
        require.resolve('@tensorflow/tfjs-backend-wasm');
        return null;
      } catch {
        return '@tensorflow/tfjs-backend-wasm is not installed (run `npm ci`)';
      }
    case 'webgpu':
      return webgpuMissing();
    default:
      return `unknown backend '${name}' (expected auto, tensorflow, webgpu, native, wasm or cpu)`;
  }
}

/**
 * Both halves of the webgpu backend installed: Dawn's Node binding for this platform and
 * tfjs-backend-webgpu. Whether an adapter exists (a Vulkan driver) shows only when Dawn starts.
 */
function webgpuMissing(): string | null {
  try {
    require.resolve('@tensorflow/tfjs-backend-webgpu');
  } catch {
    return '@tensorflow/tfjs-backend-webgpu is not installed (run `npm ci`)';
  }
  let dir: string;
  try {
    dir = dirname(require.resolve('webgpu/package.json'));
  } catch {
    return 'webgpu (Dawn for Node) is not installed (run `npm ci`)';
  }
  const platform = `${process.platform}-${process.platform === 'darwin' ? 'universal' : process.arch}`;
  return existsSync(join(dir, 'dist', platform, 'dawn.node'))
    ? null
    : `webgpu (Dawn for Node) has no binding for ${platform}`;
}
