#!/usr/bin/env node
// Install step of @mtlface/collective. Never fails an install (always exits 0): builds
// build/Release/mtl_collective.node (mmap'd shared-memory rings + AVX2/F16C wire kernels) with
// node-gyp when a C compiler is there. Without it one line says so and the package runs on its
// WebAssembly SIMD kernels and pread/pwrite rings (same results, slower; see README "Native addon").
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeGypRebuild } from '../../../scripts/node-gyp-build.mjs';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');

function build() {
  if (process.env.MTL_SKIP_NATIVE_BUILD === '1')
    return 'MTL_SKIP_NATIVE_BUILD=1, not building the native kernels';
  const why = nodeGypRebuild(pkgDir);
  if (why) return `not building the native kernels: ${why}; using the WebAssembly ones`;
  return 'built the native kernels (build/Release/mtl_collective.node)';
}

console.log(`@mtlface/collective: ${build()}`);
