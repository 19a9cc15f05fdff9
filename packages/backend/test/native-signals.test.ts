// oneDNN 2.x's generated f32 GEMM kernels are not signal-safe (oneDNN issue #4845): a signal taken inside
// one writes its frame into the heap. The addon blocks signals around oneDNN (native/signal_guard.h); this
// runs its sgemm and a convolution under `node --cpu-prof` sampling every 50 µs (a SIGPROF each time),
// which corrupted the heap within seconds without the guard, and checks the process survives with every
// result still equal to one computed here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backend_util } from '@tensorflow/tfjs-core';
import { ADDON_PATH, loadDnnlAddon } from '../src/native/addon.js';
import { convParams } from '../src/native/conv.js';

const CHILD = String.raw`
const addon = require(process.env.ADDON);
const [m, k, n] = [192, 320, 160];
const a = Float32Array.from({ length: m * k }, (_, i) => ((i * 7919) % 101) / 50 - 1);
const b = Float32Array.from({ length: k * n }, (_, i) => ((i * 104729) % 97) / 48 - 1);
const aCopy = a.slice(), bCopy = b.slice();
// reference in float64, rounded once: the sgemm result must be within float32 accumulation error of it
const ref = new Float64Array(m * n);
for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) { const v = a[i * k + p]; for (let j = 0; j < n; j++) ref[i * n + j] += v * b[p * n + j]; }
const params = Int32Array.from([1, m, n, k, 0, 0, 0, 0]);
const conv = JSON.parse(process.env.CONV);
const x = Float32Array.from({ length: 2 * 16 * 16 * 8 }, (_, i) => Math.sin(i));
const w = Float32Array.from({ length: 3 * 3 * 8 * 16 }, (_, i) => Math.cos(i));
const y0 = new Float32Array(2 * 16 * 16 * 16);
addon.conv2d(x, w, null, y0, Int32Array.from(conv), 0);
let calls = 0;
const t0 = Date.now();
while (Date.now() - t0 < 2500) {
  const c = new Float32Array(m * n);
  addon.matmul(a, b, c, params);
  let worst = 0;
  for (let i = 0; i < c.length; i++) worst = Math.max(worst, Math.abs(c[i] - ref[i]));
  if (!(worst < 1e-3)) throw new Error('sgemm result off by ' + worst + ' at call ' + calls);
  const y = new Float32Array(y0.length);
  addon.conv2d(x, w, null, y, Int32Array.from(conv), 0);
  if (y.some((v, i) => v !== y0[i])) throw new Error('convolution result changed at call ' + calls);
  // churn the heap the way a training step does
  const junk = Array.from({ length: 20 }, (_, i) => new Float32Array(1000 + ((calls * 37 + i * 911) % 30000)));
  if (junk.length !== 20) throw new Error('unreachable');
  calls++;
}
if (a.some((v, i) => v !== aCopy[i]) || b.some((v, i) => v !== bCopy[i])) throw new Error('an input changed');
console.log('ok ' + calls);
`;

test('oneDNN sgemm and convolutions under a SIGPROF every 50 µs (node --cpu-prof): no heap corruption, exact results', () => {
  const { addon, reason } = loadDnnlAddon();
  assert.ok(addon, reason);
  const dir = mkdtempSync(join(tmpdir(), 'mtl-signals-'));
  try {
    const script = join(dir, 'child.cjs');
    writeFileSync(script, CHILD);
    const conv = convParams(backend_util.computeConv2DInfo([2, 16, 16, 8], [3, 3, 8, 16], 1, 1, 'same'))!;
    const r = spawnSync(
      process.execPath,
      ['--cpu-prof', '--cpu-prof-interval', '50', '--cpu-prof-dir', join(dir, 'prof'), script],
      {
        env: { ...process.env, ADDON: ADDON_PATH, CONV: JSON.stringify([...conv]) },
        encoding: 'utf8',
        timeout: 120_000,
      },
    );
    assert.equal(r.signal, null, `the child died of ${r.signal}: ${r.stderr.slice(-300)}`);
    assert.equal(r.status, 0, `the child failed: ${r.stderr.slice(-300)}`);
    const calls = Number(/^ok (\d+)$/m.exec(r.stdout)?.[1]);
    assert.ok(calls > 10, `only ${calls} iterations ran: ${r.stdout}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
