#!/usr/bin/env node
// Install step of @mtlface/backend. Never fails an install (always exits 0).
// 1. build/Release/mtl_dnnl.node: the oneDNN addon, built with node-gyp when the
//    system library is present; without it, or when the build breaks, one line
//    says so and the `native` backend reports itself unavailable (`auto` falls back).
// 2. build/tfjs-gradients.cjs: tfjs-core's op gradients bundled for Node (see
//    src/gradients.ts; bundled lazily at first use if this step could not run).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeGypRebuild } from '../../../scripts/node-gyp-build.mjs';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const header = '/usr/include/oneapi/dnnl/dnnl.hpp';
const tag = '@mtlface/backend:';
const require = createRequire(import.meta.url);

function buildAddon() {
  if (process.env.MTL_SKIP_NATIVE_BUILD === '1') {
    return 'MTL_SKIP_NATIVE_BUILD=1, not building the oneDNN addon';
  }
  if (!existsSync(header)) {
    return `${header} not found, skipping the oneDNN addon (the native backend); get it with: sudo apt-get install libdnnl-dev`;
  }
  const why = nodeGypRebuild(pkgDir);
  if (why) return `building the oneDNN addon: ${why}; the native backend will be unavailable`;
  return 'built the oneDNN addon (build/Release/mtl_dnnl.node)';
}

function bundleGradients() {
  try {
    const esbuild = require('esbuild');
    const entry = join(
      dirname(require.resolve('@tensorflow/tfjs-core/package.json')),
      'dist/register_all_gradients.js',
    );
    const outfile = join(pkgDir, 'build/tfjs-gradients.cjs');
    esbuild.buildSync({
      entryPoints: [entry],
      bundle: true,
      format: 'cjs',
      platform: 'node',
      outfile,
      logLevel: 'error',
    });
    return null;
  } catch (err) {
    return `could not bundle the tfjs gradients now (${String(err.message).split('\n')[0]}); they are bundled at first use`;
  }
}

console.log(`${tag} ${buildAddon()}`);
const g = bundleGradients();
if (g) console.log(`${tag} ${g}`);
