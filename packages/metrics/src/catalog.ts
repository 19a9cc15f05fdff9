import type { Registry } from 'prom-client';
import { LauncherMetrics } from './launcher.js';
import { createWorkerMetrics } from './worker.js';

async function samplesOf(registry: Registry): Promise<string[]> {
  const out: string[] = [];
  for (const m of await registry.getMetricsAsJSON()) {
    out.push(m.name);
    if (String(m.type) === 'histogram') out.push(`${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`);
    if (String(m.type) === 'summary') out.push(`${m.name}_sum`, `${m.name}_count`);
  }
  return out;
}

/**
 * Every sample name a node's `/metrics` can contain, read from live registries
 * (a worker's and a launcher's, with their default metrics), not from a list.
 */
export async function exportedSampleNames(): Promise<Set<string>> {
  const worker = createWorkerMetrics({ rank: 0, timeline: null });
  const launcher = new LauncherMetrics({ host: '127.0.0.1', port: 0, nodeRank: 0 });
  try {
    return new Set([...(await samplesOf(worker.registry)), ...(await samplesOf(launcher.registry))]);
  } finally {
    await worker.close();
    await launcher.close();
  }
}
