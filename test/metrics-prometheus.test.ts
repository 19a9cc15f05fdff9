// End to end: `mtl-launch --metrics-port` with 2 script-mode workers (the fast,
// deterministic variant; test/metrics-prometheus-demo.test.ts runs the demo
// config), scraped by a real Prometheus server (Debian package, loopback only,
// temporary storage, 1 s scrapes), checked through Prometheus's HTTP API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { byRank, scrapedRun, stop, until } from './metrics-e2e.js';
import { concrete, dashboardQueries } from './metrics-promql.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const SCRIPT_WORKER = join(root, 'packages/metrics/test/fixtures/script-worker.ts');

test('a real Prometheus scrapes a 2-worker mtl-launch run: per-rank losses move, throughput > 0, restarts count', async (t) => {
  const run = scrapedRun(t, 'mtl-prom-');
  const { dir } = run;
  const pids = join(dir, 'pids');
  mkdirSync(pids);
  const { launcher, prom, metricsPort } = await run.launch(
    [`--timeline=${join(dir, 'timeline.json')}`, SCRIPT_WORKER],
    { env: { ...process.env, FIXTURE_PID_DIR: pids, FIXTURE_STEP_MS: '40' }, scrapeSeconds: 1 },
  );
  const { query } = prom;

  await run.check(async () => {
    // The endpoint the node serves passes promtool's lint.
    const text = await until('both ranks on /metrics', async () => {
      const body = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      return /mtl_loss\{[^}]*rank="0"/.test(body) && /mtl_loss\{[^}]*rank="1"/.test(body) && body;
    });
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(lint.status, 0, `${lint.stdout}${lint.stderr}`);

    // Each rank's loss series exists in Prometheus and changes over time.
    const moved = await until("both ranks' loss to change in Prometheus", async () => {
      const r = byRank(await query('changes(mtl_loss{task="fr",name="id"}[30s])'));
      return r['0']! > 0 && r['1']! > 0 && r;
    });
    assert.deepEqual(Object.keys(moved).sort(), ['0', '1']);
    for (const s of await prom.samples('mtl_loss{task="fr",name="id"}[30s]')) {
      assert.ok(new Set(s.values.map((v) => v[1])).size >= 2, 'distinct samples over time');
    }

    // Throughput is positive.
    const throughput = await until('a positive images/s', async () => {
      const [s] = await query('sum(rate(mtl_images_total[10s]))');
      return s && Number(s.value[1]) > 0 && Number(s.value[1]);
    });
    assert.ok(throughput > 0);

    // Every dashboard query runs against the live data and returns finite values.
    const empty: string[] = [];
    for (const q of dashboardQueries()) {
      const series = await query(concrete(q.expr));
      if (series.length === 0) empty.push(q.expr);
      for (const s of series) assert.ok(Number.isFinite(Number(s.value[1])) || s.value[1] === 'NaN', q.expr);
    }
    // Before any failure only these may be empty: the fixture worker validates nothing, and no
    // worker has exited or restarted yet (both are checked with values after the kill below).
    const exitsQuery = 'sum by (cause) (mtl_worker_exits_total{instance=~"$instance"})';
    const restartsQuery = 'changes(mtl_launcher_restarts_total[1m]) > 0';
    assert.deepEqual(
      empty.sort(),
      [restartsQuery, 'mtl_validation_score{instance=~"$instance"}', exitsQuery].sort(),
    );
    assert.ok(
      (await query(concrete('sum by (phase) (rate(mtl_step_phase_seconds_sum[$__rate_interval]))'))).length >=
        5,
    );

    // Killing a worker makes the launcher restart both; Prometheus sees the counter move.
    assert.equal(Number((await query('mtl_launcher_restarts_total'))[0]?.value[1]), 0);
    const victim = Number(readFileSync(join(pids, 'rank1.pid'), 'utf8'));
    process.kill(victim, 'SIGKILL');
    await until('mtl_launcher_restarts_total to reach 1 in Prometheus', async () => {
      const [s] = await query('mtl_launcher_restarts_total');
      return s && Number(s.value[1]) === 1;
    });
    const exits = await query('mtl_worker_exits_total{rank="1",cause="signal"}');
    assert.equal(Number(exits[0]?.value[1]), 1);
    // The dashboard's failure panels now show the kill.
    const byCause = await query(concrete(exitsQuery));
    // Rank 1 killed by a signal; rank 0 stopped by the launcher to restart both together.
    assert.deepEqual(Object.fromEntries(byCause.map((x) => [x.metric.cause, Number(x.value[1])])), {
      signal: 1,
      stopped: 1,
    });
    assert.equal((await query(concrete(restartsQuery))).length, 1);
    // The restarted rank 1 reports again.
    await until('rank 1 back after the restart', async () => {
      const r = byRank(await query('mtl_worker_up'));
      return (
        r['0'] === 1 && r['1'] === 1 && (await query('mtl_loss{rank="1",task="fr",name="id"}')).length === 1
      );
    });

    // On shutdown the launcher merges both ranks' timelines (both attempts) into one Chrome trace.
    await stop(launcher);
    const trace = JSON.parse(readFileSync(join(dir, 'timeline.json'), 'utf8')) as {
      traceEvents: Array<{ ph: string; pid: number; name: string; cat?: string; ts: number }>;
    };
    const spans = trace.traceEvents.filter((e) => e.ph === 'X');
    for (const rank of [0, 1]) {
      const cats = new Set(spans.filter((e) => e.pid === rank).map((e) => e.cat));
      for (const c of ['step', 'data_wait', 'compute', 'allreduce', 'collective'])
        assert.ok(cats.has(c), `rank ${rank} ${c}`);
    }
    assert.ok(
      spans.every((e, i) => i === 0 || e.ts >= spans[i - 1]!.ts),
      'sorted by time',
    );
  });
});
