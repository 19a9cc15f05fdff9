import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { Registry } from 'prom-client';
import type { Counter, Gauge } from 'prom-client';
import { aggregateSnapshots, foldRetired, forNode } from './aggregate.js';
import { LAUNCHER_METRICS, NODE_SUMMED } from './definitions.js';
import { METRICS_REQUEST, isMetricsResponse } from './ipc.js';
import type { MetricsRequest, MetricsSnapshot } from './ipc.js';
import { collectLintedDefaults, registerAll } from './registry.js';

export interface LauncherMetricsOptions {
  /** Address to bind `/metrics` to ('0.0.0.0' = all interfaces; bind where the scraper reaches it). */
  host: string;
  /** TCP port; 0 picks a free one (read `port` after `listen()`). */
  port: number;
  /** This launcher's node rank (GROUP_RANK), exported as `mtl_launcher_info{node_rank}`. */
  nodeRank: number;
  /** How long one scrape waits for each worker's answer (default 1000 ms). */
  scrapeTimeoutMs?: number;
  /**
   * A worker that misses a scrape is served from its last answer while that is
   * younger than this (default 30 s; a step may block its event loop that long);
   * after that its series disappear and `mtl_worker_up{rank}` is 0.
   */
  staleAfterMs?: number;
}

export type WorkerExitCause = 'exit' | 'signal' | 'stopped';

interface WorkerEntry {
  rank: number;
  child: ChildProcess;
  last: MetricsSnapshot | null;
  lastAtMs: number;
  onMessage: (msg: unknown) => void;
  onExit: () => void;
}

/**
 * The launcher's side of metrics: serves one `/metrics` endpoint for the node.
 * On each scrape it asks every attached worker for its registry over
 * child_process IPC (bounded by `scrapeTimeoutMs`, so a hung worker cannot hang
 * the scrape), aggregates them like prom-client's AggregatorRegistry (per-rank
 * series keep `rank`, node totals are summed), and appends its own metrics.
 */
export class LauncherMetrics {
  readonly host: string;
  port: number;
  readonly nodeRank: number;
  readonly registry = new Registry();
  private readonly scrapeTimeoutMs: number;
  private readonly staleAfterMs: number;
  private readonly m;
  private readonly workers = new Map<number, WorkerEntry>();
  private readonly pending = new Map<number, (answered: boolean) => void>();
  private retired: MetricsSnapshot = [];
  private nextRequestId = 1;
  private server: Server | null = null;

  constructor(opts: LauncherMetricsOptions) {
    if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
      throw new RangeError(`metrics: port must be an integer in 0..65535, got ${opts.port}`);
    }
    this.host = opts.host;
    this.port = opts.port;
    this.nodeRank = opts.nodeRank;
    this.scrapeTimeoutMs = opts.scrapeTimeoutMs ?? 1000;
    this.staleAfterMs = opts.staleAfterMs ?? 30_000;
    collectLintedDefaults(this.registry);
    const m = registerAll(this.registry, LAUNCHER_METRICS);
    this.m = {
      restarts: m.restarts as Counter,
      workerExits: m.workerExits as Counter,
      workerUp: m.workerUp as Gauge,
      workerMetricsAge: m.workerMetricsAge as Gauge,
      scrapeTimeouts: m.scrapeTimeouts as Counter,
    };
    (m.info as Gauge).set({ node_rank: String(opts.nodeRank) }, 1);
  }

  /** Starts serving `/metrics` and `/healthz`; fails naming host:port when the address is taken. */
  async listen(): Promise<void> {
    if (this.server) return;
    const server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        const where = this.host.includes(':') ? `[${this.host}]:${this.port}` : `${this.host}:${this.port}`;
        const why =
          err.code === 'EADDRINUSE'
            ? 'address already in use (choose another --metrics-port)'
            : err.code === 'EADDRNOTAVAIL'
              ? 'no such local address'
              : err.message;
        reject(new Error(`metrics: cannot listen on ${where}: ${why}`, { cause: err }));
      };
      server.once('error', onError);
      server.listen(this.port, this.host, () => {
        server.off('error', onError);
        resolve();
      });
    });
    const addr = server.address();
    if (addr && typeof addr === 'object') this.port = addr.port;
    this.server = server;
  }

  /** Starts asking `child` (spawned with an 'ipc' stdio entry) for the metrics of `rank`. */
  attachWorker(rank: number, child: ChildProcess): void {
    const old = this.workers.get(rank);
    if (old) this.remove(old);
    const entry: WorkerEntry = {
      rank,
      child,
      last: null,
      lastAtMs: 0,
      onMessage: (msg) => {
        if (!isMetricsResponse(msg)) return;
        const ok = 'metrics' in msg;
        if (ok && this.workers.get(rank) === entry) {
          entry.last = msg.metrics;
          entry.lastAtMs = Date.now();
        }
        this.pending.get(msg.id)?.(ok);
      },
      // A worker that exits without detachWorker (a launcher bug or a race) must not stay "up".
      onExit: () => {
        if (this.workers.get(rank) === entry) this.remove(entry);
      },
    };
    child.on('message', entry.onMessage);
    child.once('exit', entry.onExit);
    this.workers.set(rank, entry);
    this.m.workerUp.set({ rank: String(rank) }, 1);
  }

  /** The worker of `rank` is gone: its series disappear and its exit is counted by cause. */
  detachWorker(rank: number, cause: WorkerExitCause, _code?: number | null, _signal?: string | null): void {
    const entry = this.workers.get(rank);
    if (entry) this.remove(entry);
    this.m.workerExits.inc({ rank: String(rank), cause });
    this.m.workerUp.set({ rank: String(rank) }, 0);
  }

  recordRestart(): void {
    this.m.restarts.inc();
  }

  /** The node's exposition text: aggregated workers, then the launcher's own metrics. */
  async metrics(): Promise<string> {
    const entries = [...this.workers.values()];
    const answered = await Promise.all(entries.map((e) => this.ask(e)));
    const now = Date.now();
    const snapshots: MetricsSnapshot[] = [];
    if (this.retired.length > 0) snapshots.push(this.retired);
    entries.forEach((e, i) => {
      const rank = { rank: String(e.rank) };
      if (!answered[i]) this.m.scrapeTimeouts.inc(rank);
      const fresh = e.last !== null && (answered[i] || now - e.lastAtMs <= this.staleAfterMs);
      if (this.workers.get(e.rank) !== e) return; // exited while we waited
      this.m.workerUp.set(rank, fresh ? 1 : 0);
      if (e.last && fresh) {
        this.m.workerMetricsAge.set(rank, answered[i] ? 0 : (now - e.lastAtMs) / 1000);
        snapshots.push(forNode(e.last, NODE_SUMMED));
      } else {
        this.m.workerMetricsAge.remove(rank);
      }
    });
    const workers = aggregateSnapshots(snapshots);
    return (await workers.metrics()) + (await this.registry.metrics());
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  async close(): Promise<void> {
    for (const entry of [...this.workers.values()]) this.remove(entry);
    for (const resolve of this.pending.values()) resolve(false);
    const server = this.server;
    this.server = null;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private remove(entry: WorkerEntry): void {
    entry.child.off('message', entry.onMessage);
    entry.child.off('exit', entry.onExit);
    if (entry.last) this.retired = foldRetired(this.retired, entry.last, NODE_SUMMED);
    this.workers.delete(entry.rank);
    this.m.workerUp.set({ rank: String(entry.rank) }, 0);
    this.m.workerMetricsAge.remove({ rank: String(entry.rank) });
  }

  /** Sends one request; resolves true when answered, false on timeout or a closed channel. */
  private ask(entry: WorkerEntry): Promise<boolean> {
    const child = entry.child;
    if (!child.connected || child.exitCode !== null || child.signalCode !== null)
      return Promise.resolve(false);
    const id = this.nextRequestId++;
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => finish(false), this.scrapeTimeoutMs);
      const finish = (answered: boolean) => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(answered);
      };
      this.pending.set(id, finish);
      const request: MetricsRequest = { type: METRICS_REQUEST, id };
      try {
        child.send(request, (err) => {
          if (err) finish(false);
        });
      } catch {
        finish(false);
      }
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      } else if (path === '/metrics') {
        const body = await this.metrics();
        res
          .writeHead(200, { 'Content-Type': this.contentType })
          .end(req.method === 'HEAD' ? undefined : body);
      } else if (path === '/healthz') {
        const workers = [...this.workers.keys()].sort((a, b) => a - b);
        res
          .writeHead(200, { 'Content-Type': 'application/json' })
          .end(JSON.stringify({ status: 'ok', nodeRank: this.nodeRank, workers }));
      } else {
        res
          .writeHead(404, { 'Content-Type': 'text/plain' })
          .end('mtl-launch metrics: try /metrics or /healthz\n');
      }
    } catch (err) {
      res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`metrics: ${String(err)}\n`);
    }
  }
}
