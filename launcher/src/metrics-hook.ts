import type { ChildProcess } from 'node:child_process';
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

export async function startMetrics(
  port: number | undefined,
  host: string,
  nodeRank: number,
): Promise<MetricsHook> {
  if (port === undefined || port === 0) return OFF;
  // prom-client is loaded only when metrics are on.
  const { LauncherMetrics } = await import('@mtlface/metrics');
  const m = new LauncherMetrics({ host, port, nodeRank });
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
