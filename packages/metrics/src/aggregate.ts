import { AggregatorRegistry } from 'prom-client';
import type { Registry } from 'prom-client';
import type { MetricsSnapshot } from './ipc.js';

/**
 * Prepares one worker's snapshot for the node: families in `nodeSummed` lose
 * their `rank` label (so ranks add up); every family is aggregated by `sum`
 * (for per-rank families each label set is unique, so the sum is the value;
 * the worker's own aggregator hints, e.g. `omit` for start times, are meant
 * for cluster workers that share no labels and do not apply here).
 */
export function forNode(snapshot: MetricsSnapshot, nodeSummed: ReadonlySet<string>): MetricsSnapshot {
  return snapshot.map((metric) => {
    const values = nodeSummed.has(metric.name)
      ? metric.values.map((v) => {
          const { rank: _rank, ...labels } = v.labels;
          return { ...v, labels };
        })
      : metric.values;
    return { ...metric, values, aggregator: 'sum' };
  });
}

/** prom-client's cluster aggregation over snapshots already passed through `forNode`. */
export function aggregateSnapshots(snapshots: MetricsSnapshot[]): Registry {
  return AggregatorRegistry.aggregate(snapshots);
}

/**
 * Adds the counters of `retiring` (a worker that left) into `retired`, so that
 * node-summed counters stay monotonic when a worker exits or restarts.
 * Only counter and histogram families in `nodeSummed` are kept.
 */
export function foldRetired(
  retired: MetricsSnapshot,
  retiring: MetricsSnapshot,
  nodeSummed: ReadonlySet<string>,
): MetricsSnapshot {
  const byName = new Map(retired.map((m) => [m.name, m]));
  for (const metric of forNode(retiring, nodeSummed)) {
    if (
      !nodeSummed.has(metric.name) ||
      (String(metric.type) !== 'counter' && String(metric.type) !== 'histogram')
    )
      continue;
    const into = byName.get(metric.name);
    if (!into) {
      byName.set(metric.name, { ...metric, values: metric.values.map((v) => ({ ...v })) });
      continue;
    }
    const key = (v: { metricName?: string; labels: object }) =>
      `${v.metricName ?? ''}\0${JSON.stringify(Object.entries(v.labels).sort())}`;
    const index = new Map(into.values.map((v) => [key(v), v]));
    for (const v of metric.values) {
      const prev = index.get(key(v));
      if (prev) prev.value += v.value;
      else into.values.push({ ...v });
    }
  }
  return [...byName.values()];
}
