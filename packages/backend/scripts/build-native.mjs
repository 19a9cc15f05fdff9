#!/usr/bin/env node
// Install step of @mtlface/backend. Never fails an install (always exits 0).
// 1. build/Release/mtl_dnnl.node: the oneDNN addon, built with node-gyp when the
//    system library is present; without it, or when the build breaks, one line
//    says so and the `native` backend reports itself unavailable (`auto` falls back).
// 2. build/tfjs-gradients.cjs: tfjs-core's op gradients bundled for Node (see
//    src/gradients.ts; bundled lazily at first use if this step could not run).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const header = '/usr/include/oneapi/dnnl/dnnl.hpp';
const tag = '@mtlface/backend:';
const require = createRequire(import.meta.url);

// node-gyp: npm passes its own in lifecycle scripts (npm_config_node_gyp); else npm's copy next to node.
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

function buildAddon() {
  if (process.env.MTL_SKIP_NATIVE_BUILD === '1') {
    return 'MTL_SKIP_NATIVE_BUILD=1, not building the oneDNN addon';
  }
  if (!existsSync(header)) {
    return `${header} not found, skipping the oneDNN addon (the native backend); get it with: sudo apt-get install libdnnl-dev`;
  }
  const gyp = findNodeGyp();
  if (!gyp) return 'node-gyp not found, skipping the oneDNN addon (npm ships it; or npm i -g node-gyp)';
  // Offline machines: use the headers installed with node instead of downloading them.
  const nodeDir = join(dirname(process.execPath), '..');
  const args = [gyp, 'rebuild', '--release'];
  if (existsSync(join(nodeDir, 'include/node/node_api.h'))) args.push(`--nodedir=${nodeDir}`);
  const r = spawnSync(process.execPath, args, {
    cwd: pkgDir,
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    process.stderr.write((r.stdout ?? '') + (r.stderr ?? '') + (r.error ? String(r.error) : ''));
    return 'building the oneDNN addon failed (see above); the native backend will be unavailable';
  }
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
