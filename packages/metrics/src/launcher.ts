import type { ChildProcess } from 'node:child_process';

export interface LauncherMetricsOptions {
  /** Address to bind `/metrics` to ('0.0.0.0' = all interfaces, like other exporters). */
  host: string;
  /** TCP port; 0 picks a free one (see `port` after `listen()`). */
  port: number;
  /** This launcher's node rank (GROUP_RANK), exported as `mtl_launcher_info{node_rank}`. */
  nodeRank: number;
  /** How long one scrape waits for a worker's answer before leaving it out. */
  scrapeTimeoutMs?: number;
}

export type WorkerExitCause = 'exit' | 'signal' | 'stopped';

/**
 * The launcher's side of metrics: serves one `/metrics` endpoint for the node,
 * asking every live worker for its registry over child_process IPC on each scrape.
 */
export class LauncherMetrics {
  readonly host: string;
  port: number;
  readonly nodeRank: number;

  constructor(opts: LauncherMetricsOptions) {
    this.host = opts.host;
    this.port = opts.port;
    this.nodeRank = opts.nodeRank;
  }

  async listen(): Promise<void> {}

  attachWorker(_rank: number, _child: ChildProcess): void {}

  detachWorker(
    _rank: number,
    _cause: WorkerExitCause,
    _code?: number | null,
    _signal?: string | null,
  ): void {}

  recordRestart(): void {}

  async close(): Promise<void> {}
}
