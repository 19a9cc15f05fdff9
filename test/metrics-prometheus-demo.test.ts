// The acceptance run: a real Prometheus (Debian package, loopback,
// temporary TSDB) scrapes `mtl-launch --nproc-per-node 2 --metrics-port …
// configs/demo.yaml`, the built-in training worker on the synthetic set, and the
// test reads Prometheus's HTTP API. The demo is shrunk by overrides (batch 4,
// 16-wide backbone, small heads) so that iterations take seconds on a small CI
// machine; the code path is the demo's (joint mode, AMP, f16 wire, bucketed sync).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SOURCE_EXEC_ARGV } from '../scripts/source-argv.mjs';
import { byRank, scrapedRun, until, workerPid } from './metrics-e2e.js';

const root = fileURLToPath(new URL('..', import.meta.url));

test('Prometheus over a 2-worker demo run: each rank’s loss moves, images/s > 0, a killed worker counts a restart', async (t) => {
  const run = scrapedRun(t, 'mtl-prom-demo-');
  const { dir } = run;
  const synth = spawnSync(
    process.execPath,
    [
      ...SOURCE_EXEC_ARGV,
      join(root, 'workers/src/mtl-data.ts'),
      'synth',
      `--out=${join(dir, 'synth')}`,
      '--identities=12',
      '--images-per-identity=6',
      '--size=32',
      '--pairs=20',
    ],
    { encoding: 'utf8', timeout: 120_000 },
  );
  assert.equal(synth.status, 0, `mtl-data synth: ${synth.stdout}${synth.stderr}`);

  // 2 s scrapes: a worker inside a synchronous tfjs step answers late, so a scrape can take
  // the launcher's 1 s per-worker timeout; Prometheus's scrape_timeout must exceed it.
  const { launcher, prom } = await run.launch(
    [
      join(root, 'configs/demo.yaml'),
      `data.root=${join(dir, 'synth')}`,
      `data.train_list=${join(dir, 'synth', 'train.txt')}`,
      `checkpoint_dir=${join(dir, 'ckpt')}`,
      'iterations=100000',
      'checkpoint_interval=100000',
      'data.batch_size=4',
      'model.arch.widths=[16,16,16,16]',
      'model.embedding_dim=16',
      'model.generator_units=4',
      'model.discriminator_dim=8',
      'val_interval=0',
    ],
    { scrapeSeconds: 2 },
  );
  const { query } = prom;

  await run.check(async () => {
    const moved = await until(
      "both ranks' fr/id loss to change in Prometheus",
      async () => {
        const r = byRank(await query('changes(mtl_loss{task="fr",name="id"}[5m])'));
        return r['0']! > 0 && r['1']! > 0 && r;
      },
      240_000,
    );
    assert.deepEqual(Object.keys(moved).sort(), ['0', '1']);
    // Both tasks of the joint model report losses per rank.
    const fas = await query('count by (rank) (mtl_loss{task="fas"})');
    assert.deepEqual(Object.keys(byRank(fas)).sort(), ['0', '1']);

    const throughput = await until('a positive images/s', async () => {
      const [s] = await query('sum(rate(mtl_images_total[1m]))');
      return s && Number(s.value[1]) > 0 && Number(s.value[1]);
    });
    assert.ok(throughput > 0);
    assert.equal(Number((await query('mtl_launcher_restarts_total'))[0]?.value[1]), 0);

    const victim = workerPid(launcher.pid!, 1);
    assert.ok(victim, 'found the rank 1 worker');
    process.kill(victim, 'SIGKILL');
    await until(
      'mtl_launcher_restarts_total to reach 1 in Prometheus',
      async () => {
        const [s] = await query('mtl_launcher_restarts_total');
        return s && Number(s.value[1]) === 1;
      },
      120_000,
    );
    assert.equal(Number((await query('mtl_worker_exits_total{rank="1",cause="signal"}'))[0]?.value[1]), 1);
  });
});
