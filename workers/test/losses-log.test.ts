// losses.jsonl: the release's names, the mean over ranks, and a resumed run's file equal to an
// uninterrupted run's.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@mtlface/backend';
import { StoreServer } from '@mtlface/collective';
import { loadConfig, type IterationReport, type TrainConfig } from '@mtlface/train';
import { localGroups } from '../../packages/train/test/helpers.js';
import { REPO, TINY, tinySynth, dataOverrides } from '../../test/train-helpers.js';
import { LossesLog, lossRecord, truncateIterations } from '../src/train/losses-log.js';
import { runTraining } from '../src/train/run.js';

before(async () => {
  await initBackend({ backend: 'auto', log: () => {} });
});

function report(iteration: number, losses: Record<string, number>, logits: Record<string, number> = {}) {
  return { iteration, losses, logits, lr: { fr: 0.1 }, skipped: [], scale: {} } as unknown as IterationReport;
}

const lines = (path: string): Array<Record<string, number>> =>
  readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number>);

test("the release's names for its values, ours for the rest", () => {
  const r = report(
    4,
    {
      fr_id: 1,
      fr_age: 2,
      fr_da: 3,
      fr_total: 4,
      fas_d: 5,
      fas_g_gan: 6,
      fas_g_id: 7,
      fas_g_age: 8,
      fas_g: 9,
    },
    { d1_logit: 10, d3_logit: 11, g_logit: 12 },
  );
  assert.deepEqual(Object.fromEntries(lossRecord(r)), {
    id_loss: 1,
    age_loss: 2,
    da_loss: 3,
    fas_id_loss: 7,
    fas_age_loss: 8,
    d1_logit: 10,
    d3_logit: 11,
    g_logit: 12,
    fr_total: 4,
    fas_d: 5,
    fas_g_gan: 6,
    fas_g: 9,
  });
});

test('each value is the mean over ranks; rank 0 writes one line per iteration with the 1-based iter', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mtl-losses-'));
  const cfg = { losses_file: join(dir, 'sub', 'l.jsonl'), checkpoint_dir: dir } as TrainConfig;
  const store = await StoreServer.listen({ host: '127.0.0.1', port: 0, token: 't' });
  const groups = await localGroups(store.port, `losses-${process.pid}`);
  try {
    const logs = groups.map((g) => LossesLog.open(cfg, g.rank, g, 0));
    await Promise.all(logs.map((l, r) => l.append(report(0, { fr_id: 1 + 2 * r, fr_da: 4 * r }))));
    await Promise.all(logs.map((l, r) => l.append(report(1, { fr_id: 10 * r, fr_da: 0.5 }))));
  } finally {
    await Promise.all(groups.map((g) => g.close()));
    await store.close();
  }
  assert.deepEqual(lines(cfg.losses_file!), [
    { iter: 1, id_loss: 2, da_loss: 2, lr: 0.1 },
    { iter: 2, id_loss: 5, da_loss: 0.5, lr: 0.1 },
  ]);
});

test('opening at iteration k keeps lines 1..k and drops the rest and a torn last line', () => {
  const path = join(mkdtempSync(join(tmpdir(), 'mtl-losses-')), 'losses.jsonl');
  writeFileSync(
    path,
    ['{"iter":1,"a":1}', '{"iter":2,"a":2}', '{"iter":3,"a":3}', '{"iter":4,"a"'].join('\n'),
  );
  truncateIterations(path, 2);
  assert.equal(readFileSync(path, 'utf8'), '{"iter":1,"a":1}\n{"iter":2,"a":2}\n');
  truncateIterations(path, 0);
  assert.equal(readFileSync(path, 'utf8'), '');
});

test("a run that crashed after logging iteration 3 and resumed from checkpoint 2 writes the uninterrupted run's losses.jsonl, byte for byte", async () => {
  const data = await tinySynth();
  const cfg = (dir: string, extra: string[]): TrainConfig =>
    loadConfig(join(REPO, 'configs/demo.yaml'), [
      ...TINY,
      ...dataOverrides(data),
      'mode=aifr',
      'iterations=4',
      'checkpoint_interval=2',
      `checkpoint_dir=${dir}`,
      ...extra,
    ]);
  const quiet = { log: () => {}, env: {}, skipBackendInit: true, group: null };
  const [a, b] = [mkdtempSync(join(tmpdir(), 'mtl-losses-a-')), mkdtempSync(join(tmpdir(), 'mtl-losses-b-'))];
  await runTraining(cfg(a, []), quiet);
  await runTraining(cfg(b, ['stop_at=3']), quiet);
  assert.equal(lines(join(b, 'losses.jsonl')).length, 3);
  // As a crash after iteration 3 was logged and before its checkpoint: the resume starts at 2.
  for (const f of readdirSync(b)) if (f.startsWith('ckpt-0000003')) rmSync(join(b, f));
  await runTraining(cfg(b, ['resume=true']), quiet);
  const straight = readFileSync(join(a, 'losses.jsonl'), 'utf8');
  assert.deepEqual(
    lines(join(a, 'losses.jsonl')).map((l) => l.iter),
    [1, 2, 3, 4],
  );
  assert.ok(lines(join(a, 'losses.jsonl')).every((l) => l.id_loss! > 0 && l.lr! > 0 && 'age_loss' in l));
  assert.equal(readFileSync(join(b, 'losses.jsonl'), 'utf8'), straight);
});
