import type { ChildProcess } from 'node:child_process';
import { routeAddressTo } from '@mtlface/collective';
import { LaunchError } from './errors.js';
import type { WorkerExit } from './worker-process.js';

/** The launcher's calls into @mtlface/metrics, kept in one place; a no-op when metrics are off. */
export interface MetricsHook {
  attach(rank: number, child: ChildProcess): void;
  detach(exit: WorkerExit): void;
  restart(): void;
  close(): Promise<void>;
}

const OFF: MetricsHook = {
  attach: () => undefined,
  detach: () => undefined,
  restart: () => undefined,
  close: async () => undefined,
};

/**
 * Where `/metrics` listens without `--metrics-host`: the address this node reaches the master from
 * (on node 0, the master address itself), so the Prometheus that scrapes the run's network reaches it
 * and nothing else does; loopback when no route is found. Every interface (0.0.0.0) is only ever an
 * explicit choice.
 */
export async function defaultMetricsHost(masterHost: string): Promise<string> {
  return routeAddressTo(masterHost).catch(() => '127.0.0.1');
}

/** Serves `/metrics` on `host` (undefined: `defaultMetricsHost(masterHost)`) when a port is given. */
export async function startMetrics(
  port: number | undefined,
  host: string | undefined,
  masterHost: string,
  nodeRank: number,
): Promise<MetricsHook> {
  if (port === undefined || port === 0) return OFF;
  // prom-client is loaded only when metrics are on.
  const { LauncherMetrics } = await import('@mtlface/metrics');
  const m = new LauncherMetrics({ host: host ?? (await defaultMetricsHost(masterHost)), port, nodeRank });
  try {
    await m.listen();
  } catch (e) {
    // LauncherMetrics already names host:port and the cause; pass it through as one line.
    throw new LaunchError((e as Error).message);
  }
  return {
    attach: (rank, child) => m.attachWorker(rank, child),
    detach: (e) =>
      m.detachWorker(
        e.rank,
        e.stoppedByLauncher ? 'stopped' : e.signal ? 'signal' : 'exit',
        e.code,
        e.signal,
      ),
    restart: () => m.recordRestart(),
    close: () => m.close(),
  };
}

/** Merges the per-rank timeline files the workers wrote (`--timeline FILE`). */
export async function finishTimeline(file: string | undefined): Promise<void> {
  if (file === undefined) return;
  const { mergeTimeline } = await import('@mtlface/metrics');
  await mergeTimeline(file);
}
