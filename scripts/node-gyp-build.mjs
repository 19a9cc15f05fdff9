// Shared by the packages' install scripts that build an N-API addon with node-gyp
// (packages/backend: oneDNN; packages/collective: mmap + wire kernels). Never throws.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

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

/**
 * `node-gyp rebuild --release` in `pkgDir`. Returns null when it built, else why not (the caller
 * prints it and carries on without the addon); a failed build's output goes to stderr.
 */
export function nodeGypRebuild(pkgDir) {
  const gyp = findNodeGyp();
  if (!gyp) return 'node-gyp not found (npm ships it; or npm i -g node-gyp)';
  // Offline machines: use the headers installed with node instead of downloading them.
  const nodeDir = join(dirname(process.execPath), '..');
  const args = [gyp, 'rebuild', '--release'];
  if (existsSync(join(nodeDir, 'include/node/node_api.h'))) args.push(`--nodedir=${nodeDir}`);
  const r = spawnSync(process.execPath, args, {
    cwd: pkgDir,
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
  });
  if (r.status === 0) return null;
  process.stderr.write((r.stdout ?? '') + (r.stderr ?? '') + (r.error ? String(r.error) : ''));
  return 'the build failed (see above)';
}
