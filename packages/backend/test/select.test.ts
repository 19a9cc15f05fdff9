import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import {
  cpuThreads,
  gpuPinning,
  initBackend,
  nativeKernelNames,
  parseBackendChoice,
  probeBackends,
} from '../src/index.js';

test('parseBackendChoice accepts the five choices and names the field on anything else', () => {
  for (const c of ['auto', 'tensorflow', 'native', 'wasm', 'cpu']) assert.equal(parseBackendChoice(c), c);
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
    ['tensorflow', 'native', 'wasm', 'cpu'],
  );
  assert.deepEqual(
    p.map((b) => b.available),
    [false, true, true, true],
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
