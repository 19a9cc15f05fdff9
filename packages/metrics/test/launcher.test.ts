import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { LauncherMetrics } from '@mtlface/metrics';
import { exited, find, parseExposition, promtoolCheck, spawnScriptWorker, until } from './helpers.js';

async function scrape(lm: LauncherMetrics) {
  const res = await fetch(`http://127.0.0.1:${lm.port}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  return { text, samples: parseExposition(text) };
}

test('the launcher serves its workers per rank, sums node totals, and passes promtool', async (t) => {
  const lm = new LauncherMetrics({ host: '127.0.0.1', port: 0, nodeRank: 0 });
  await lm.listen();
  const workers = [0, 1].map((rank) => spawnScriptWorker(rank));
  t.after(async () => {
    for (const w of workers) w.kill('SIGKILL');
    await lm.close();
  });
  workers.forEach((w, rank) => lm.attachWorker(rank, w));

  const first = await until('both ranks to report a loss', async () => {
    const s = await scrape(lm);
    return find(s.samples, 'mtl_loss', { task: 'fr', name: 'id' }).length === 2 && s;
  });
  const check = promtoolCheck(first.text);
  assert.equal(check.status, 0, check.output);
  assert.equal(find(first.samples, 'mtl_worker_up', { rank: '0' })[0]?.value, 1);
  assert.equal(find(first.samples, 'mtl_launcher_info', { node_rank: '0' })[0]?.value, 1);
  assert.ok(find(first.samples, 'process_cpu_seconds_total').length === 1, 'launcher defaults');
  assert.equal(
    find(first.samples, 'mtl_worker_process_cpu_seconds_total').length,
    2,
    'worker defaults per rank',
  );

  // The node total is the sum of the per-rank counts (each rank's iterations × batch 8),
  // read in the same scrape.
  const later = await until('progress', async () => {
    const s = await scrape(lm);
    const images = find(s.samples, 'mtl_images_total')[0]?.value ?? 0;
    return images > 0 && s;
  });
  const iters = find(later.samples, 'mtl_iterations_total').map((s) => s.value);
  assert.equal(iters.length, 2);
  assert.equal(find(later.samples, 'mtl_images_total')[0]!.value, 8 * (iters[0]! + iters[1]!));

  // A killed worker's series disappear; its exit is counted and its rank marked down.
  workers[1]!.kill('SIGKILL');
  await exited(workers[1]!);
  lm.detachWorker(1, 'signal', null, 'SIGKILL');
  lm.recordRestart();
  const after = await scrape(lm);
  assert.equal(find(after.samples, 'mtl_loss', { rank: '1' }).length, 0);
  assert.equal(find(after.samples, 'mtl_loss', { rank: '0' }).length, 3);
  assert.equal(find(after.samples, 'mtl_worker_up', { rank: '1' })[0]?.value, 0);
  assert.equal(find(after.samples, 'mtl_worker_exits_total', { rank: '1', cause: 'signal' })[0]?.value, 1);
  assert.equal(find(after.samples, 'mtl_launcher_restarts_total')[0]?.value, 1);
  // The node counter keeps the dead rank's last known contribution (monotonic).
  assert.ok(
    find(after.samples, 'mtl_images_total')[0]!.value >= find(later.samples, 'mtl_images_total')[0]!.value,
  );

  const health = await (await fetch(`http://127.0.0.1:${lm.port}/healthz`)).json();
  assert.deepEqual(health, { status: 'ok', nodeRank: 0, workers: [0] });
  assert.equal((await fetch(`http://127.0.0.1:${lm.port}/nope`)).status, 404);
});

test('a hung worker cannot hang the scrape: it is left out within the timeout and marked', async (t) => {
  const lm = new LauncherMetrics({
    host: '127.0.0.1',
    port: 0,
    nodeRank: 1,
    scrapeTimeoutMs: 300,
    staleAfterMs: 0,
  });
  await lm.listen();
  const hung = spawnScriptWorker(0, { FIXTURE_HANG_AFTER: '3' });
  const fine = spawnScriptWorker(1);
  t.after(async () => {
    hung.kill('SIGKILL');
    fine.kill('SIGKILL');
    await lm.close();
  });
  lm.attachWorker(0, hung);
  lm.attachWorker(1, fine);
  // Before it hangs, rank 0 may answer; wait until its answers stop.
  const s = await until('rank 0 to go silent while rank 1 answers', async () => {
    const t0 = Date.now();
    const r = await scrape(lm);
    assert.ok(Date.now() - t0 < 3000, 'scrape bounded by the worker timeout');
    return (
      find(r.samples, 'mtl_worker_up', { rank: '0' })[0]?.value === 0 &&
      find(r.samples, 'mtl_loss', { rank: '1' }).length > 0 &&
      r
    );
  });
  assert.equal(find(s.samples, 'mtl_loss', { rank: '0' }).length, 0, 'no stale series for the hung rank');
  assert.ok(find(s.samples, 'mtl_worker_scrape_timeouts_total', { rank: '0' })[0]!.value >= 1);
  assert.equal(find(s.samples, 'mtl_launcher_info', { node_rank: '1' })[0]?.value, 1);
});

test('a worker that exits without detachWorker stops being asked and is marked down', async (t) => {
  const lm = new LauncherMetrics({ host: '127.0.0.1', port: 0, nodeRank: 0 });
  t.after(() => lm.close());
  const w = spawnScriptWorker(0, { FIXTURE_ITERS: '5' });
  lm.attachWorker(0, w);
  await exited(w);
  const s = parseExposition(await lm.metrics());
  assert.equal(find(s, 'mtl_worker_up', { rank: '0' })[0]?.value, 0);
  assert.equal(find(s, 'mtl_loss').length, 0);
  // Its last (pushed) snapshot still counts in the node total: 5 iterations × 8 images.
  assert.equal(find(s, 'mtl_images_total')[0]?.value, 40);
});

test('listen fails with a message naming host:port when the port is taken', async (t) => {
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  t.after(() => blocker.close());
  const port = (blocker.address() as { port: number }).port;
  const lm = new LauncherMetrics({ host: '127.0.0.1', port, nodeRank: 0 });
  await assert.rejects(
    lm.listen(),
    new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: address already in use`),
  );
  await lm.close();
  assert.throws(
    () => new LauncherMetrics({ host: '::', port: 70000, nodeRank: 0 }),
    /port must be an integer/,
  );
});
