// Checkpoints a run cannot lose: pruning stays within the run's own lineage and waits for the new
// checkpoint to verify, temporary files never outlive their writer, and a full disk is one clear
// error that leaves the previous checkpoint as the resume point.
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import {
  CheckpointError,
  findLatestCheckpoint,
  readCheckpointTensors,
  sweepStaleTemps,
  writeCheckpoint,
  writeFileDurably,
  type CheckpointMeta,
} from '../src/checkpoint.js';

await tf.setBackend('cpu');

function meta(iteration: number, runId: string): CheckpointMeta {
  return {
    iteration,
    mode: 'aifr',
    scalers: {},
    optimizers: {},
    sampler: { iteration, epoch: 0 },
    rng: { seed: 1 },
    worldSize: 1,
    config: {},
    configHash: 'x',
    run: { id: runId, attempt: 0 },
  };
}

async function write(dir: string, iteration: number, runId: string, keep = 2, elements = 6): Promise<void> {
  const t = tf.fill([elements], iteration);
  try {
    await writeCheckpoint(dir, [['w', t]], meta(iteration, runId), keep);
  } finally {
    t.dispose();
  }
}

const names = (dir: string): string[] => readdirSync(dir).sort();

test("a run never prunes another run's checkpoints, even older or higher-numbered ones", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mtl-prune-'));
  await write(dir, 20, 'earlier-run', 5);
  await write(dir, 40, 'earlier-run', 5);
  await write(dir, 2, 'new-run');
  // The old rule (keep the two highest numbers in the directory) deleted ckpt-2 here.
  for (const it of [2, 20, 40]) assert.ok(existsSync(join(dir, `ckpt-${String(it).padStart(7, '0')}.json`)));
  await write(dir, 4, 'new-run');
  await write(dir, 6, 'new-run');
  assert.deepEqual(
    names(dir).filter((f) => f.endsWith('.json')),
    ['ckpt-0000004.json', 'ckpt-0000006.json', 'ckpt-0000020.json', 'ckpt-0000040.json'],
    "only the run's own oldest checkpoint (2) is pruned",
  );
});

test('resuming past a corrupt newer checkpoint keeps the good one it resumed from', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mtl-prune-corrupt-'));
  await write(dir, 40, 'r', 5);
  await write(dir, 60, 'r', 5);
  const torn = join(dir, 'ckpt-0000060.safetensors');
  truncateSync(torn, statSync(torn).size - 3);
  assert.equal(findLatestCheckpoint(dir, () => {})?.sidecar.iteration, 40);
  await write(dir, 45, 'r', 2); // the resumed run's next checkpoint
  assert.ok(existsSync(join(dir, 'ckpt-0000040.json')), 'the checkpoint resumed from is kept');
  assert.ok(existsSync(join(dir, 'ckpt-0000045.json')));
  assert.equal(findLatestCheckpoint(dir, () => {})?.sidecar.iteration, 45);
  await write(dir, 50, 'r', 2);
  assert.ok(!existsSync(join(dir, 'ckpt-0000040.json')), 'now 45 and 50 are the two newest of the run');
});

test('sidecars of no run (older format, foreign files) are never pruned', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mtl-prune-foreign-'));
  writeFileSync(join(dir, 'ckpt-0000001.json'), '{"not": "ours"}');
  await write(dir, 2, 'r', 1);
  await write(dir, 3, 'r', 1);
  assert.deepEqual(
    names(dir).filter((f) => f.endsWith('.json')),
    ['ckpt-0000001.json', 'ckpt-0000003.json'],
  );
});

test('a failed durable write leaves no temporary file; stale temporaries of dead writers are swept', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mtl-tmp-'));
  mkdirSync(join(dir, 'target.bin')); // rename onto a directory fails after the temp file was written
  assert.throws(() => writeFileDurably(join(dir, 'target.bin'), new Uint8Array(10)));
  assert.deepEqual(names(dir), ['target.bin']);

  const dead = spawnSync(process.execPath, [
    '-e',
    'process.stdout.write(String(process.pid))',
  ]).stdout.toString();
  const alive = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
  try {
    writeFileSync(join(dir, `ckpt-0000001.safetensors.tmp-${dead}`), 'x');
    writeFileSync(join(dir, `ckpt-0000001.json.tmp-${process.pid}`), 'x');
    writeFileSync(join(dir, `ckpt-0000002.safetensors.tmp-${alive.pid}`), 'x');
    const removed = sweepStaleTemps(dir).sort();
    assert.deepEqual(
      removed,
      [`ckpt-0000001.json.tmp-${process.pid}`, `ckpt-0000001.safetensors.tmp-${dead}`].sort(),
    );
    assert.ok(
      existsSync(join(dir, `ckpt-0000002.safetensors.tmp-${alive.pid}`)),
      'a live writer keeps its file',
    );
  } finally {
    alive.kill('SIGKILL');
  }
});

/** A tmpfs of `kib` KiB mounted on a fresh directory (root only); null with the reason when it cannot be. */
function tinyTmpfs(kib: number): { dir: string; unmount: () => void } | { reason: string } {
  const dir = mkdtempSync(join(tmpdir(), 'mtl-enospc-'));
  if (process.getuid?.() !== 0) return { reason: 'mounting a tmpfs needs root' };
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${kib}k`, 'tmpfs', dir]);
  if (r.status !== 0) return { reason: `mount -t tmpfs failed: ${r.stderr.toString().trim()}` };
  return {
    dir,
    unmount: () => {
      spawnSync('umount', [dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('a full disk: one error naming the file and the bytes needed, no temp file left, the previous checkpoint stays', async (t) => {
  const fs = tinyTmpfs(64);
  if ('reason' in fs) {
    if (process.env.CI === 'true') assert.fail(`ENOSPC test cannot run in CI: ${fs.reason}`);
    t.skip(fs.reason);
    return;
  }
  try {
    await write(fs.dir, 1, 'r', 2, 1024); // 4 KiB: fits
    let err: unknown;
    try {
      await write(fs.dir, 2, 'r', 2, 64 * 1024); // 256 KiB: does not
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof CheckpointError, `expected a CheckpointError, got ${String(err)}`);
    assert.match(
      err.message,
      /^cannot write .*ckpt-0000002\.safetensors: no space left on the device \(needs \d+ bytes, \d+ free\)$/,
    );
    assert.deepEqual(
      names(fs.dir),
      ['ckpt-0000001.json', 'ckpt-0000001.safetensors'],
      'no .tmp file left behind',
    );
    assert.equal(findLatestCheckpoint(fs.dir, () => {})?.sidecar.iteration, 1);
  } finally {
    fs.unmount();
  }
});

test('kill -9 at seeded random points of checkpoint writes, repeated: every checkpoint taken for good is good', async () => {
  const seed = Number(process.env.MTL_TEST_SEED ?? 20261206);
  let s = seed >>> 0;
  const rand = (): number => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const dir = mkdtempSync(join(tmpdir(), 'mtl-kill-'));
  const writer = fileURLToPath(new URL('./fixtures/checkpoint-writer.ts', import.meta.url));
  let lastGood = 0;
  for (let trial = 0; trial < 8; trial++) {
    const child = spawn(process.execPath, ['--conditions=mtl-source', '--import', 'tsx', writer, dir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`writer not ready after 30 s (seed ${seed})`)), 30000);
      child.stdout!.once('data', () => (clearTimeout(timer), resolve()));
      child.once('exit', (code) => reject(new Error(`writer exited with ${code} (seed ${seed})`)));
    });
    await new Promise((r) => setTimeout(r, 20 + rand() * 400));
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    const found = findLatestCheckpoint(dir, () => {});
    if (found) {
      const raw = readCheckpointTensors(found).get('w')!;
      const values = new Float32Array(raw.bytes.buffer, raw.bytes.byteOffset, raw.bytes.byteLength / 4);
      assert.ok(
        values.every((v) => v === found.sidecar.iteration),
        `trial ${trial} (seed ${seed}): checkpoint ${found.sidecar.iteration} verified but holds other values`,
      );
      assert.ok(
        found.sidecar.iteration >= lastGood,
        `trial ${trial} (seed ${seed}): a verified checkpoint was lost`,
      );
      lastGood = found.sidecar.iteration;
    }
  }
  assert.ok(lastGood > 0, `no checkpoint completed in 8 trials (seed ${seed})`);
  sweepStaleTemps(dir);
  assert.deepEqual(
    readdirSync(dir).filter((f) => /\.tmp-\d+$/.test(f)),
    [],
    'temps of dead writers swept',
  );
  const complete = readdirSync(dir).filter((f) => f.endsWith('.json')).length;
  assert.ok(complete <= 3, `pruning kept the directory small across restarts (${complete} sidecars)`);
});
