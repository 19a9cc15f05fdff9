// Where a run starts: refusals that name the files and keys, adoption of a run's lineage, and the
// config comparison that keeps a resume on the same trajectory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { writeCheckpoint } from '../src/checkpoint.js';
import { validateConfig, type TrainConfig } from '../src/config.js';
import { configChanges, planResume } from '../src/resume.js';

await tf.setBackend('cpu');

function config(extra: Record<string, unknown> = {}): TrainConfig {
  return validateConfig({
    mode: 'aifr',
    iterations: 100,
    model: { arch: 'ir50', input_size: 112 },
    data: { root: 'd', train_list: 'd/list.txt', batch_size: 16 },
    fr_optim: { lr: 0.05 },
    ...extra,
  });
}

async function checkpointAt(dir: string, iteration: number, cfg: TrainConfig, worldSize = 1): Promise<void> {
  const t = tf.zeros([2]);
  await writeCheckpoint(
    dir,
    [['w', t]],
    {
      iteration,
      mode: cfg.mode,
      scalers: {},
      optimizers: {},
      sampler: { iteration, epoch: 0 },
      rng: { seed: cfg.seed },
      worldSize,
      config: cfg,
      configHash: 'h',
      run: { id: 'the-run', attempt: 0 },
    },
    5,
  );
  t.dispose();
}

const req = (dir: string, resume: boolean | 'auto', cfg = config(), worldSize = 1, restart = false) => ({
  dir,
  resume,
  restart,
  config: cfg,
  worldSize,
});

test("a fresh run refuses a directory holding an earlier run's checkpoints, naming them", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mtl-plan-'));
  assert.equal(planResume(req(dir, false)).found, null, 'an empty directory is fine');
  await checkpointAt(dir, 20, config());
  await checkpointAt(dir, 40, config());
  assert.throws(
    () => planResume(req(dir, false)),
    /checkpoint_dir .* already holds checkpoints \(ckpt-0000040\.json, ckpt-0000020\.json\).*resume=true/,
  );
  const adopted = planResume(req(dir, true));
  assert.equal(adopted.found?.sidecar.iteration, 40);
  assert.deepEqual(adopted.run, { id: 'the-run', attempt: 1 }, 'the resumed run keeps the lineage');
  const fresh = planResume(req(mkdtempSync(join(tmpdir(), 'mtl-plan-')), false));
  assert.notEqual(fresh.run.id, 'the-run');
});

test('resume=true with nothing usable fails naming every rejected file and why; resume=auto starts fresh', async () => {
  const empty = mkdtempSync(join(tmpdir(), 'mtl-plan-'));
  assert.throws(
    () => planResume(req(empty, true)),
    /resume=true but nothing usable to resume: no checkpoint/,
  );
  const dir = mkdtempSync(join(tmpdir(), 'mtl-plan-'));
  await checkpointAt(dir, 10, config());
  const f = join(dir, 'ckpt-0000010.safetensors');
  truncateSync(f, statSync(f).size - 1);
  writeFileSync(join(dir, 'ckpt-0000020.json'), '{torn');
  assert.throws(
    () => planResume(req(dir, true)),
    (e: Error) =>
      /ckpt-0000020\.json: sidecar is unreadable or torn/.test(e.message) &&
      /ckpt-0000010\.json: tensor file .*\(torn write\)/.test(e.message) &&
      !e.message.includes('\n'),
  );
  const auto = planResume(req(dir, 'auto'));
  assert.equal(auto.found, null);
  assert.match(auto.notes.at(-1)!, /starting from scratch/);
  // A launcher restart before the first checkpoint starts the run again rather than failing.
  assert.equal(planResume(req(empty, true, config(), 1, true)).found, null);
});

test('a resume that would change the trajectory is refused unless resume_override names the keys', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mtl-plan-'));
  await checkpointAt(dir, 10, config(), 2);
  const changed = config({
    fr_optim: { lr: 0.5 },
    data: { root: 'd', train_list: 'd/list.txt', batch_size: 8 },
  });
  assert.throws(
    () => planResume(req(dir, true, changed, 2)),
    /the config changed data\.batch_size 16 → 8, fr_optim\.lr 0\.05 → 0\.5; .*resume_override=\[data\.batch_size,fr_optim\.lr\]/,
  );
  assert.throws(() => planResume(req(dir, true, config(), 1)), /world_size 2 → 1/);
  const allowed = planResume(
    req(dir, true, { ...changed, resume_override: ['fr_optim.lr', 'data.batch_size'] }, 2),
  );
  assert.equal(allowed.found?.sidecar.iteration, 10);
  assert.match(
    allowed.notes.join('\n'),
    /resuming with changed keys \(resume_override\): data\.batch_size 16 → 8/,
  );
  // Keys that only say how long or how loudly to run are free to change.
  const longer = config({ iterations: 500, log_interval: 7, checkpoint_interval: 3 });
  assert.equal(planResume(req(dir, true, longer, 2)).found?.sidecar.iteration, 10);
});

test('configChanges lists the dotted keys that differ, and a key added since holds its default', () => {
  const a = config();
  const saved = JSON.parse(JSON.stringify(a)) as Record<string, unknown>;
  delete saved.fas_estimator; // written before the key existed
  assert.deepEqual(configChanges(saved, a, 1, 1), []);
  assert.deepEqual(configChanges(saved, { ...a, seed: 3, loss: { ...a.loss, fr_da: 0 } }, 1, 4), [
    'loss.fr_da',
    'seed',
    'world_size',
  ]);
});
