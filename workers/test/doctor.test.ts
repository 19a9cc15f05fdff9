import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { tensorflowBindingPresent } from './support/tf-binding.js';
import { cudaChecks, libraryIndex, nodeCheck, shmBytesNeeded, type Check } from '../src/doctor/checks.js';
import { maxRelativeDifference, SMOKE_TOLERANCE } from '../src/doctor/smoke.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SOURCE = ['--conditions=mtl-source', '--import', import.meta.resolve('tsx')];

function doctor(args: string[]): {
  code: number | null;
  report: { ready: boolean; checks: Check[] } | null;
  stderr: string;
} {
  const r = spawnSync(process.execPath, [...SOURCE, join(REPO, 'workers/src/mtl-doctor.ts'), ...args], {
    encoding: 'utf8',
    timeout: 240_000,
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  return { code: r.status, report: line ? JSON.parse(line) : null, stderr: r.stderr };
}

describe('mtl-doctor pieces', () => {
  it('compares node versions numerically against the engines floor', () => {
    assert.equal(nodeCheck('20.11.0').status, 'ok');
    assert.equal(nodeCheck('22.1.0').status, 'ok');
    assert.equal(nodeCheck('20.9.0').status, 'fail');
    assert.equal(nodeCheck('18.20.4').status, 'fail');
  });

  it('measures a relative difference norm-wise: max |a − b| over max |b|', () => {
    const ref = [Float32Array.from([2, -4]), Float32Array.from([0.5])];
    const got = [Float32Array.from([2.004, -4]), Float32Array.from([0.5])];
    assert.ok(Math.abs(maxRelativeDifference(got, ref) - 0.004 / 4) < 1e-7);
    assert.equal(maxRelativeDifference(ref, ref), 0);
  });

  it("reads ldconfig's cache and LD_LIBRARY_PATH, and names a CUDA of another major version", () => {
    const ldconfig = () =>
      '3 libs found in cache\n' +
      '\tlibcudart.so.13 (libc6,x86-64) => /usr/local/cuda-13.0/lib/libcudart.so.13\n' +
      '\tlibcudnn.so.8 (libc6,x86-64) => /opt/cudnn/libcudnn.so.8\n';
    const index = libraryIndex({}, ldconfig);
    assert.equal(index.get('libcudnn.so.8'), '/opt/cudnn/libcudnn.so.8');
    const checks = cudaChecks(index, { backend: 'auto', nproc: 1, masterAddr: '127.0.0.1', masterPort: 0 });
    const cudart = checks.find((c) => c.name === 'libcudart.so.11.0')!;
    assert.equal(cudart.status, 'info', 'not a failure unless the run uses the GPU');
    assert.match(cudart.detail, /not found \(found libcudart\.so\.13: another major version\)/);
    assert.equal(checks.find((c) => c.name === 'libcudnn.so.8')!.status, 'ok');
  });

  it('asks /dev/shm for 8 MiB per directed pair, twice, per worker of a node', () => {
    assert.equal(shmBytesNeeded(1), 0);
    assert.equal(shmBytesNeeded(8), 8 * 8 * 2 * 2 ** 20);
  });
});

describe('mtl-doctor on this machine', () => {
  it('--smoke --json: every loaded backend matches the cpu step, a 2-process all-reduce is exact, exit 0', () => {
    const r = doctor(['--smoke', '--json', '--master-port', '0']);
    assert.ok(r.report, r.stderr);
    const fails = r.report.checks.filter((c) => c.status === 'fail');
    assert.deepEqual(fails, []);
    assert.equal(r.report.ready, true);
    assert.equal(r.code, 0);
    const byName = new Map(r.report.checks.map((c) => [`${c.section}/${c.name}`, c]));
    for (const b of ['tensorflow', 'webgpu', 'native', 'wasm', 'cpu'])
      assert.ok(byName.has(`backends/${b}`), b);
    // lavapipe (scripts/install-system-deps.sh): webgpu loads, the adapter is reported with its limits and
    // as software, and auto passes it over for native.
    assert.equal(byName.get('backends/webgpu')?.status, 'ok');
    const adapter = byName.get('backends/webgpu adapter')!.detail;
    assert.match(
      adapter,
      /vendor mesa, .*software \(CPU\), maxBufferSize \d+ MiB, maxStorageBufferBindingSize \d+ MiB/,
    );
    assert.match(adapter, /auto passes it over/);
    assert.equal(byName.get('backends/auto')?.detail, 'would use native');
    const loaded = r.report.checks
      .filter((c) => c.section === 'backends' && c.status === 'ok' && !c.name.startsWith('selected'))
      .map((c) => c.name)
      .filter((n) => n !== 'cpu');
    assert.ok(loaded.length > 0, 'at least one backend besides cpu loads here');
    for (const b of loaded) {
      const step = byName.get(`smoke/step on ${b}`);
      assert.ok(step, `no smoke step on ${b}`);
      const diff = Number(/max relative difference from cpu (\S+)/.exec(step.detail)?.[1]);
      assert.ok(diff <= SMOKE_TOLERANCE, `${b}: ${step.detail}`);
    }
    assert.match(byName.get('smoke/all-reduce, 2 processes')!.detail, /2 ranks, 1 MiB f32 sum exact/);
    for (const s of ['system', 'tfjs', 'gpu', 'cuda', 'native', 'collective'])
      assert.ok(
        r.report.checks.some((c) => c.section === s),
        `section ${s}`,
      );
  });

  it('exits 1 naming the cause when the selected configuration cannot run', async () => {
    // A store port already taken.
    const srv = createServer();
    await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
    const port = (srv.address() as { port: number }).port;
    try {
      const r = doctor(['--json', '--master-port', String(port)]);
      assert.equal(r.code, 1);
      assert.equal(r.report?.ready, false);
      const fail = r.report!.checks.filter((c) => c.status === 'fail');
      assert.deepEqual(
        fail.map((c) => c.name),
        ['store port'],
      );
      assert.match(fail[0]!.detail, new RegExp(`127\\.0\\.0\\.1:${port} is in use`));
    } finally {
      srv.close();
    }
    // The TensorFlow backend, installed or not (judged independently of the doctor).
    const bound = tensorflowBindingPresent();
    const tf = doctor(['--json', '--backend', 'tensorflow', '--master-port', '0']);
    if (bound) {
      // Whether it loads depends on the CUDA libraries; either way the exit status is the verdict.
      assert.equal(tf.code, tf.report!.ready ? 0 : 1);
      return;
    }
    assert.equal(tf.code, 1);
    assert.ok(
      tf.report!.checks.some((c) => c.status === 'fail' && c.name === 'selected: tensorflow'),
      JSON.stringify(tf.report!.checks.filter((c) => c.status === 'fail')),
    );
  });
});
