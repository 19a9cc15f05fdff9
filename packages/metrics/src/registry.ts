import { Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client';
import type { Registry } from 'prom-client';
import type { MetricDefinition } from './definitions.js';

/** Registers one table entry in `registry` as the prom-client metric its type names. */
export function register(registry: Registry, d: MetricDefinition): Counter | Gauge | Histogram {
  const common = { name: d.name, help: d.help, labelNames: [...d.labelNames], registers: [registry] };
  switch (d.type) {
    case 'counter':
      return new Counter(common);
    case 'gauge':
      return new Gauge(common);
    case 'histogram':
      return new Histogram({ ...common, buckets: [...(d.buckets ?? [])] });
  }
}

export function registerAll<K extends string>(
  registry: Registry,
  table: Record<K, MetricDefinition>,
): Record<K, Counter | Gauge | Histogram> {
  const out = {} as Record<K, Counter | Gauge | Histogram>;
  for (const key of Object.keys(table) as K[]) out[key] = register(registry, table[key]);
  return out;
}

/**
 * prom-client's process/Node defaults, minus the three gauges it names `*_total`
 * (nodejs_active_{handles,requests,resources}_total), which `promtool check
 * metrics` rejects as non-counters with a counter suffix; their per-type
 * siblings (`nodejs_active_handles{type}` …) carry the same numbers.
 */
export function collectLintedDefaults(registry: Registry, prefix = ''): void {
  collectDefaultMetrics({ register: registry, prefix });
  for (const name of [
    'nodejs_active_handles_total',
    'nodejs_active_requests_total',
    'nodejs_active_resources_total',
  ]) {
    registry.removeSingleMetric(prefix + name);
  }
}
