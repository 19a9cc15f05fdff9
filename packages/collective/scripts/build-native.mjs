#!/usr/bin/env node
// Install step of @mtlface/collective. Never fails an install (always exits 0): builds
// build/Release/mtl_collective.node (mmap'd shared-memory rings + AVX2/F16C wire kernels) with
// node-gyp when a C compiler is there. Without it one line says so and the package runs on its
// WebAssembly SIMD kernels and fd-based rings (same results, slower; see README "Native kernels").
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const tag = '@mtlface/collective:';
const require = createRequire(import.meta.url);

function findNodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
  ];
  try {
    candidates.push(require.resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not a package here: npm's copy is enough
  }
  return candidates.find((p) => p && existsSync(p));
}

function build() {
  if (process.env.MTL_SKIP_NATIVE_BUILD === '1')
    return 'MTL_SKIP_NATIVE_BUILD=1, not building the native kernels';
  const gyp = findNodeGyp();
  if (!gyp) return 'node-gyp not found, skipping the native kernels (npm ships it; or npm i -g node-gyp)';
  const nodeDir = join(dirname(process.execPath), '..');
  const args = [gyp, 'rebuild', '--release'];
  // Offline machines: the headers installed with node instead of a download.
  if (existsSync(join(nodeDir, 'include/node/node_api.h'))) args.push(`--nodedir=${nodeDir}`);
  const r = spawnSync(process.execPath, args, {
    cwd: pkgDir,
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    process.stderr.write((r.stdout ?? '') + (r.stderr ?? '') + (r.error ? String(r.error) : ''));
    return 'building the native kernels failed (see above); using the WebAssembly ones';
  }
  return 'built the native kernels (build/Release/mtl_collective.node)';
}

console.log(`${tag} ${build()}`);
