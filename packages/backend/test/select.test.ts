import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs-core';
import {
  cpuThreads,
  gpuPinning,
  initBackend,
  nativeKernelNames,
  parseBackendChoice,
  probeBackends,
} from '../src/index.js';
import { describeAdapter } from '../src/webgpu/dawn.js';

test('parseBackendChoice accepts the six choices and names the field on anything else', () => {
  for (const c of ['auto', 'tensorflow', 'webgpu', 'native', 'wasm', 'cpu'])
    assert.equal(parseBackendChoice(c), c);
  assert.throws(
    () => parseBackendChoice('gpu', 'config.yaml: backend'),
    /config\.yaml: backend: unknown backend 'gpu'/,
  );
});

test('gpuPinning keeps the launcher’s CUDA_VISIBLE_DEVICES, else uses LOCAL_RANK, else none', () => {
  assert.deepEqual(gpuPinning({ CUDA_VISIBLE_DEVICES: '3', LOCAL_RANK: '1' }), {
    devices: '3',
    source: 'CUDA_VISIBLE_DEVICES',
  });
  assert.deepEqual(gpuPinning({ LOCAL_RANK: '2' }), { devices: '2', source: 'LOCAL_RANK' });
  assert.deepEqual(gpuPinning({ CUDA_VISIBLE_DEVICES: '', LOCAL_RANK: '0' }), {
    devices: '0',
    source: 'LOCAL_RANK',
  });
  assert.equal(gpuPinning({}), null);
  assert.equal(gpuPinning({ LOCAL_RANK: 'x' }), null);
});

test('cpuThreads honours OMP_NUM_THREADS, else shares the cores among the node’s workers', () => {
  assert.equal(cpuThreads({ OMP_NUM_THREADS: '3' }, 16), 3);
  assert.equal(cpuThreads({ LOCAL_WORLD_SIZE: '4' }, 16), 4);
  assert.equal(cpuThreads({ LOCAL_WORLD_SIZE: '4' }, 2), 1);
  assert.equal(cpuThreads({}, 8), 8);
});

test('auto picks native here (tfjs-node absent, addon built) and its one log line says why not tensorflow', async () => {
  const lines: string[] = [];
  const r = await initBackend({ backend: 'auto', log: (l) => lines.push(l) });
  assert.equal(r.name, 'native');
  assert.equal(tf.getBackend(), 'native');
  assert.equal(lines.length, 1);
  assert.match(
    lines[0]!,
    /^backend: native \(oneDNN [\d.]+, \d+ threads\); not tensorflow: @tensorflow\/tfjs-node-gpu is (not installed|installed without its native binding)/,
  );
});

test('an explicit backend that cannot load is an error naming why; explicit ones that load are used', async () => {
  await assert.rejects(
    initBackend({ backend: 'tensorflow', log: () => {} }),
    /backend 'tensorflow' is unavailable: .*@tensorflow\/tfjs-node is (not installed|installed without its native binding)/,
  );
  for (const name of ['wasm', 'cpu', 'native'] as const) {
    const r = await initBackend({ backend: name, log: () => {} });
    assert.equal(r.name, name);
    assert.equal(tf.getBackend(), name);
  }
});

test('probeBackends lists every backend in auto order with availability', async () => {
  const p = await probeBackends();
  assert.deepEqual(
    p.map((b) => b.name),
    ['tensorflow', 'webgpu', 'native', 'wasm', 'cpu'],
  );
  // webgpu loads on lavapipe (installed by scripts/install-system-deps.sh) but auto passes a software adapter over.
  assert.deepEqual(
    p.map((b) => b.available),
    [false, true, true, true, true],
  );
  assert.deepEqual(
    p.map((b) => b.auto),
    [false, false, true, true, true],
  );
  assert.match(
    p[1]!.detail,
    /^Dawn, adapter mesa .*\(software adapter, runs on the CPU\); auto passes it over/,
  );
});

test('initBackend registers op gradients (tfjs-core’s Node bundle has none)', async () => {
  await initBackend({ backend: 'cpu', log: () => {} });
  const g = tf.grad((x: tf.Tensor) =>
    tf.sum(tf.square(tf.conv2d(x as tf.Tensor4D, tf.ones([1, 1, 1, 1]), 1, 'same'))),
  );
  const x = tf.tensor4d([1, -2, 3, 4], [1, 2, 2, 1]);
  assert.deepEqual(Array.from(g(x).dataSync()), [2, -4, 6, 8]);
});

test('nativeKernelNames lists exactly the kernels whose native implementation is not the cpu one', async () => {
  await initBackend({ backend: 'native' });
  const names = nativeKernelNames();
  for (const k of ['Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter', 'BatchMatMul', 'Sum']) {
    assert.ok(names.includes(k), `${k} in ${names.join(',')}`);
  }
  for (const k of tf.getKernelsForBackend('native')) {
    const cpu = tf.getKernel(k.kernelName, 'cpu');
    assert.equal(names.includes(k.kernelName), cpu?.kernelFunc !== k.kernelFunc, k.kernelName);
  }
});

test('auto’s line says why not webgpu (lavapipe is a CPU); explicit webgpu takes it and names the adapter', async () => {
  const lines: string[] = [];
  await initBackend({ backend: 'auto', log: (l) => lines.push(l) });
  assert.match(
    lines[0]!,
    /; not webgpu: Dawn's adapter is mesa .*\(software adapter, runs on the CPU\); auto takes webgpu only on a GPU/,
  );
  const r = await initBackend({ backend: 'webgpu', log: (l) => lines.push(l) });
  assert.equal(r.name, 'webgpu');
  assert.equal(tf.getBackend(), 'webgpu');
  assert.match(lines[1]!, /^backend: webgpu \(Dawn, adapter mesa software llvmpipe.*\), as requested$/);
  assert.deepEqual(Array.from(await tf.square(tf.tensor1d([1.5, -2])).data()), [2.25, 4]);
  await tf.setBackend('cpu');
});

test('describeAdapter: a fallback adapter or a llvmpipe/SwiftShader device is software, a GPU is not', () => {
  const limits = { maxBufferSize: 2 ** 34, maxStorageBufferBindingSize: 2 ** 31 };
  const gpu = (info: Record<string, unknown>) => describeAdapter({ info, limits });
  assert.equal(
    gpu({ vendor: 'nvidia', architecture: 'hopper', device: '', isFallbackAdapter: false }).software,
    false,
  );
  assert.equal(gpu({ vendor: 'amd', architecture: 'rdna-3', device: 'gfx1100' }).software, false);
  assert.equal(gpu({ vendor: 'mesa', architecture: 'software', device: 'llvmpipe-llvm-15' }).software, true);
  assert.equal(
    gpu({ vendor: 'google', architecture: '', device: 'SwiftShader Device (Subzero)' }).software,
    true,
  );
  assert.equal(gpu({ vendor: 'nvidia', architecture: '', isFallbackAdapter: true }).software, true);
  assert.equal(describeAdapter({ info: {}, isFallbackAdapter: true, limits }).software, true);
  assert.equal(gpu({ vendor: 'nvidia' }).limits.maxStorageBufferBindingSize, 2 ** 31);
});

test('without a Vulkan driver webgpu fails with one line naming what installs it, and auto goes on to native', () => {
  // An ICD list naming no file is what a machine without lavapipe or a GPU driver looks like to Dawn.
  const index = new URL('../src/index.ts', import.meta.url).href;
  const script = `import { initBackend } from '${index}';
    await initBackend({ backend: 'webgpu', log: () => {} }).catch((e) => console.log('error: ' + e.message));
    console.log((await initBackend({ backend: 'auto', log: () => {} })).name);`;
  const r = spawnSync(process.execPath, [...process.execArgv, '--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, VK_ICD_FILENAMES: '/nonexistent/icd.json' },
  });
  const lines = r.stdout.trim().split('\n');
  assert.deepEqual(
    lines,
    [
      "error: backend 'webgpu' is unavailable: webgpu: Dawn found no WebGPU adapter: no Vulkan driver (a GPU driver with Vulkan, or lavapipe: scripts/install-system-deps.sh installs libvulkan1 and mesa-vulkan-drivers)",
      'native',
    ],
    r.stderr,
  );
});
