import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { exportedSampleNames } from '@mtlface/metrics';
import { DASHBOARD_FILE, concrete, dashboardQueries, metricNamesIn } from './metrics-promql.js';

const docker = (p: string) => fileURLToPath(new URL(`../docker/${p}`, import.meta.url));

test('metricNamesIn finds selected series, not functions, labels or keywords', () => {
  assert.deepEqual(
    metricNamesIn(
      'sum by (phase) (rate(mtl_a_sum{rank=~"$rank", x="y z"}[$__rate_interval])) / on() group_left() ' +
        'sum(rate(mtl_b_count[5m] offset 1m)) > 0.5e3 and mtl_c unless bogus_name',
    ),
    ['mtl_a_sum', 'mtl_b_count', 'mtl_c', 'bogus_name'],
  );
});

test('every metric the Grafana dashboard queries is one the project exports', async () => {
  const exported = await exportedSampleNames();
  const queries = dashboardQueries();
  assert.ok(queries.length >= 20, `found ${queries.length} queries`);
  const unknown = queries.flatMap((q) =>
    metricNamesIn(q.expr)
      .filter((n) => !exported.has(n))
      .map((n) => `${q.where}: ${n}`),
  );
  assert.deepEqual(unknown, [], 'queried but not exported');
  // The dashboard covers what the issue asks for.
  const used = new Set(queries.flatMap((q) => metricNamesIn(q.expr)));
  for (const family of [
    'mtl_loss', // loss curves per task
    'mtl_images_total', // throughput
    'mtl_step_phase_seconds_sum', // step-time breakdown
    'mtl_allreduce_bytes_sum', // communication
    'mtl_allreduce_seconds_bucket',
    'mtl_loss_scale',
    'mtl_skipped_steps_total',
    'mtl_validation_score',
    'mtl_launcher_restarts_total',
    'mtl_worker_exits_total',
  ]) {
    assert.ok(used.has(family), `dashboard shows ${family}`);
  }
});

test('every dashboard query is valid PromQL (promtool check rules)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mtl-dash-'));
  try {
    const rules = dashboardQueries().map(
      (q, i) => `      - record: mtl:dashboard_query_${i}\n        expr: ${JSON.stringify(concrete(q.expr))}`,
    );
    const file = join(dir, 'rules.yml');
    writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules.join('\n')}\n`);
    const r = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the dashboard takes its datasource as an import input, and provisioning resolves it; the scrape config is valid', () => {
  const ds = parse(readFileSync(docker('grafana/provisioning/datasources/prometheus.yaml'), 'utf8'));
  const dash = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8'));
  // 'Import dashboard' asks for a Prometheus datasource (the __inputs entry) on any Grafana ...
  const inputs = dash.__inputs as Array<Record<string, string>>;
  assert.deepEqual(
    inputs.map((i) => [i.name, i.type, i.pluginId]),
    [['DS_PROMETHEUS', 'datasource', 'prometheus']],
  );
  // ... and sets the `datasource` variable with it; provisioned, the variable falls back to the
  // default Prometheus datasource, the one docker/grafana provisions.
  const variable = dash.templating.list.find((v: { type: string }) => v.type === 'datasource');
  assert.equal(variable.name, 'datasource');
  assert.equal(variable.query, 'prometheus');
  assert.equal(variable.current.value, '${DS_PROMETHEUS}');
  assert.equal(ds.datasources[0].type, 'prometheus');
  assert.equal(ds.datasources[0].isDefault, true);
  // Every datasource reference — panels, their queries, the other variables, annotations — is the variable.
  const refs: string[] = [];
  const walk = (o: unknown, path: string): void => {
    if (Array.isArray(o)) o.forEach((x, i) => walk(x, `${path}[${i}]`));
    else if (o && typeof o === 'object') {
      const r = o as Record<string, unknown>;
      if ('datasource' in r) refs.push(`${path}: ${JSON.stringify(r.datasource)}`);
      for (const [k, v] of Object.entries(r)) walk(v, `${path}.${k}`);
    }
  };
  walk(dash, '$');
  const expected = JSON.stringify({ type: 'prometheus', uid: '${datasource}' });
  assert.deepEqual(
    refs.filter((r) => !r.endsWith(`: ${expected}`)),
    [],
    'every datasource reference uses ${datasource}',
  );
  for (const p of dash.panels.filter((p: { type: string }) => p.type !== 'row'))
    assert.ok(refs.includes(`$.panels[${dash.panels.indexOf(p)}]: ${expected}`), `panel '${p.title}'`);
  const ids = dash.panels.map((p: { id: number }) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids unique');
  const provider = parse(readFileSync(docker('grafana/provisioning/dashboards/mtlface.yaml'), 'utf8'));
  assert.equal(provider.providers[0].options.path, '/var/lib/grafana/dashboards');
  const r = spawnSync('promtool', ['check', 'config', docker('prometheus/prometheus.yml')], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
});
