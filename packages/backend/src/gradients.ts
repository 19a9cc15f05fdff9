import { existsSync, renameSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// tfjs-core's Node bundle (what `import '@tensorflow/tfjs-core'` loads) does not
// register the op gradients; only the `@tensorflow/tfjs` umbrella does, and its
// per-file ESM sources cannot be imported by Node directly (extensionless
// imports). We bundle `dist/register_all_gradients.js` once with esbuild into a
// CommonJS file. Its private copy of the ops works on the shared engine,
// kernel and gradient registries, which tfjs keeps on globalThis for exactly
// this multi-copy case.

export const GRADIENTS_BUNDLE = fileURLToPath(new URL('../build/tfjs-gradients.cjs', import.meta.url));

const require = createRequire(import.meta.url);

function gradientRegistered(kernelName: string): boolean {
  const globals = (globalThis as { _tfGlobals?: Map<string, unknown> })._tfGlobals;
  const reg = globals?.get('gradRegistry') as Map<string, unknown> | undefined;
  return reg?.has(kernelName) ?? false;
}

/** Writes the gradient bundle (also done at install by scripts/build-native.mjs). */
export function buildGradientsBundle(outfile = GRADIENTS_BUNDLE): void {
  let esbuild: { buildSync(o: Record<string, unknown>): unknown };
  try {
    esbuild = require('esbuild') as typeof esbuild;
  } catch {
    throw new Error(
      `@mtlface/backend: ${outfile} is missing and esbuild is not installed to build it; run \`npm ci\` (which builds it) or install esbuild`,
    );
  }
  const entry = join(
    dirname(require.resolve('@tensorflow/tfjs-core/package.json')),
    'dist/register_all_gradients.js',
  );
  mkdirSync(dirname(outfile), { recursive: true });
  const tmp = `${outfile}.${process.pid}.tmp`;
  esbuild.buildSync({
    entryPoints: [entry],
    bundle: true,
    format: 'cjs',
    platform: 'node',
    outfile: tmp,
    logLevel: 'error',
  });
  renameSync(tmp, outfile); // atomic: concurrent workers may race to build it
}

/** Registers every tfjs op gradient (idempotent; a no-op when something else, e.g. tfjs-node, already did). */
export function registerAllGradients(): void {
  if (gradientRegistered('Conv2D')) return;
  if (!existsSync(GRADIENTS_BUNDLE)) buildGradientsBundle();
  require(GRADIENTS_BUNDLE);
  if (!gradientRegistered('Conv2D'))
    throw new Error(`@mtlface/backend: loading ${GRADIENTS_BUNDLE} registered no gradients`);
}
