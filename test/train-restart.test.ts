// A worker killed mid-run under `mtl-launch --max-restarts 1` is restarted with its peers from the
// last checkpoint, and the run completes.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findLatestCheckpoint } from '@mtlface/train';
import { SOURCE_EXEC_ARGV } from '../scripts/source-argv.mjs';
import { REPO, TINY, tinySynth, dataOverrides } from './train-helpers.js';

let data: string;
before(async () => {
  data = await tinySynth();
});

function launch(ckpt: string, env: NodeJS.ProcessEnv) {
  return spawnSync(
    process.execPath,
    [
      ...SOURCE_EXEC_ARGV,
      join(REPO, 'launcher/src/cli.ts'),
      '--standalone',
      '--nproc-per-node',
      '2',
      '--max-restarts',
      '1',
      join(REPO, 'configs/demo.yaml'),
      ...TINY,
      ...dataOverrides(data),
      'mode=aifr',
      'iterations=6',
      'checkpoint_interval=2',
      'log_interval=1',
      `checkpoint_dir=${ckpt}`,
    ],
    { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 280_000 },
  );
}

test('rank 1 killed at iteration 3 of 6: the launcher restarts both workers from checkpoint 2, and the run ends byte for byte where an uninterrupted run ends', () => {
  const ckpt = mkdtempSync(join(tmpdir(), 'mtl-restart-'));
  const r = launch(ckpt, { MTL_FAULT_EXIT_AT: '3:1' });
  const out = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.status, 0, `launcher failed:\n${out.slice(-3000)}`);
  assert.match(out, /killing rank 1 at iteration 3/);
  assert.match(out, /resuming from .*ckpt-0000002\.safetensors \(iteration 2\)/);
  const found = findLatestCheckpoint(ckpt);
  assert.equal(found?.sidecar.iteration, 6);
  assert.equal(found?.sidecar.worldSize, 2);

  const straight = mkdtempSync(join(tmpdir(), 'mtl-restart-ref-'));
  const u = launch(straight, {});
  assert.equal(u.status, 0, `uninterrupted run failed:\n${u.stderr.slice(-3000)}`);
  const ref = findLatestCheckpoint(straight)!;
  assert.equal(ref.sidecar.iteration, 6);
  assert.equal(found!.sidecar.tensors.sha256, ref.sidecar.tensors.sha256, 'the tensor files are identical');
  assert.deepEqual(found!.sidecar.scalers, ref.sidecar.scalers);
  assert.deepEqual(found!.sidecar.optimizers, ref.sidecar.optimizers);
});
