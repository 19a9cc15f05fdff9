import { Counter, Gauge, Histogram } from 'prom-client';
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
