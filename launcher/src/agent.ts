import { constants, hostname } from 'node:os';
import { join } from 'node:path';
import type { Entrypoint } from './entrypoint.js';
import { LaunchError } from './errors.js';
import type { StreamSpec } from './log-spec.js';
import { finishTimeline, startMetrics } from './metrics-hook.js';
import type { MetricsHook } from './metrics-hook.js';
import type { Rendezvous, StopReason, World } from './rendezvous.js';
import { StatusLine } from './console-status.js';
import { connectStore, hostStore } from './store-host.js';
import { StoreRendezvous } from './store-rendezvous.js';
import { execShimArgv } from './exec-shim.js';
import { describeExit, failureSummary } from './summary.js';
import { watchdogImportUrl } from './watchdog.js';
import { WorkerGroup } from './worker-group.js';
import { WorkerLogs } from './worker-logs.js';
import { isFailure } from './worker-process.js';
import type { WorkerExit, WorkerSpawn } from './worker-process.js';
import { workerEnv } from './worker-env.js';

export interface AgentConfig {
  entry: Entrypoint;
  nprocPerNode: number;
  nnodes: number;
  /** null: the rendezvous assigns it (c10d without --node-rank). */
  nodeRank: number | null;
  /** This node hosts the store; `try`: it does unless the port is taken (another launcher here hosts it). */
  hostsStore: boolean | 'try';
  masterAddr: string;
  /** 0 with `standalone`: node 0 picks a free port. */
  masterPort: number;
  runId: string;
  runToken: string;
  tokenDerived: boolean;
  maxRestarts: number;
  monitorIntervalMs: number;
  shutdownTimeoutMs: number;
  rdzvTimeoutMs: number;
  /** A node whose launcher stops answering for this long ends the run on every node. */
  heartbeatTimeoutMs: number;
  /** torchrun's `--role`: ROLE_NAME in the workers. */
  roleName: string;
  /** torchrun's `--local-addr`: this node's address (MTL_NODE_ADDR for the workers' connections). */
  localAddr?: string | undefined;
  logDir?: string | undefined;
  redirects: StreamSpec;
  tee: StreamSpec;
  localRanksFilter?: Set<number> | undefined;
  metricsPort?: number | undefined;
  /** Unset: the address this node reaches the master from (see `defaultMetricsHost`). */
  metricsHost?: string | undefined;
  timeline?: string | undefined;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Watchdog poll interval and grace in workers (defaults 500 ms / 2 s). */
  watchdogIntervalMs?: number;
  watchdogGraceMs?: number;
}

interface StoreAddress {
  host: string;
  port: number;
}

export const FORWARDED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const;
type ForwardedSignal = (typeof FORWARDED_SIGNALS)[number];

const say = (line: string): void => void process.stderr.write(`mtl-launch: ${line}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The elastic agent: joins the rendezvous, runs one attempt of local workers at a time, and decides
 * together with the other nodes (through the store) when an attempt stops and whether the next one
 * starts. Resolves with the launcher's exit code.
 */
export class Agent {
  private signalled: ForwardedSignal | undefined;
  private readonly onSignal: Array<(s: ForwardedSignal) => void> = [];
  private readonly handlers = new Map<ForwardedSignal, () => void>();
  private group: WorkerGroup | undefined;
  /** Rank 0's progress, redrawn as the console's last line when the console is a terminal. */
  private readonly status = process.stderr.isTTY ? new StatusLine(process.stderr) : undefined;

  constructor(private readonly cfg: AgentConfig) {}

  async run(): Promise<number> {
    this.installSignalHandlers();
    const cfg = this.cfg;
    let server: Awaited<ReturnType<typeof hostStore>> | undefined;
    let metrics: MetricsHook | undefined;
    let rdzv: Rendezvous | undefined;
    try {
      if (cfg.hostsStore !== false) {
        server = await this.untilSignal(
          hostStore(cfg.masterAddr, cfg.masterPort, cfg.runToken, cfg.rdzvTimeoutMs, (why) =>
            say(
              `--master-addr ${cfg.masterAddr} does not resolve yet (${why}); retrying for up to ${cfg.rdzvTimeoutMs / 1000}s (--rdzv-timeout)`,
            ),
          ),
        ).catch((e: unknown) => {
          // Several launchers on one machine with a local endpoint: the first one hosts.
          if (cfg.hostsStore === 'try' && e instanceof LaunchError && /in use/.test(e.message))
            return undefined;
          throw e;
        });
        if (server && cfg.nnodes > 1 && /^127\.|^::1$/.test(server.host)) {
          say(
            `--master-addr ${cfg.masterAddr} is a loopback address (${server.host}): only launchers on this machine can join`,
          );
        }
      }
      // On node 0, the address actually bound (a host name resolved); elsewhere, as given.
      const addr: StoreAddress = {
        host: server?.host ?? cfg.masterAddr,
        port: server?.port ?? cfg.masterPort,
      };
      const store = await this.untilSignal(
        connectStore({
          host: addr.host,
          port: addr.port,
          token: cfg.runToken,
          name: `launcher of node ${cfg.nodeRank ?? '(rank from the rendezvous)'} (${cfg.localAddr ?? hostname()})`,
          // Node 0 silent for the heartbeat timeout is as lost as any other node.
          callTimeoutMs: cfg.heartbeatTimeoutMs,
          waitMs: cfg.rdzvTimeoutMs,
          tokenDerived: cfg.tokenDerived,
        }),
      );
      try {
        rdzv = new StoreRendezvous(store, {
          node: {
            runId: cfg.runId,
            nnodes: cfg.nnodes,
            nodeRank: cfg.nodeRank,
            hostsStore: server !== undefined,
            localWorldSize: cfg.nprocPerNode,
            maxRestarts: cfg.maxRestarts,
            host: cfg.localAddr ?? hostname(),
            pid: process.pid,
          },
          address: `${addr.host}:${addr.port}`,
          timeoutMs: cfg.rdzvTimeoutMs,
          heartbeatTimeoutMs: cfg.heartbeatTimeoutMs,
          // Every node sees a stop within a monitor interval, then waits at most its grace period.
          stopTimeoutMs: cfg.shutdownTimeoutMs + cfg.heartbeatTimeoutMs + 10_000,
        });
        const world = await this.untilSignal(rdzv.join());
        metrics = await startMetrics(cfg.metricsPort, cfg.metricsHost, addr.host, world.nodeRank);
        const code = await this.supervise(rdzv, world, addr, metrics);
        await rdzv.leave().catch(() => undefined);
        return code;
      } finally {
        await store.close();
      }
    } catch (e) {
      if (e instanceof SignalledError) {
        say(`received ${e.signal} while no worker was running; exiting`);
        return 128 + signalNumber(e.signal);
      }
      throw e;
    } finally {
      this.status?.end();
      this.removeSignalHandlers();
      await metrics?.close().catch(() => undefined);
      await server?.close();
      await finishTimeline(cfg.timeline).catch((e: Error) => say(`cannot merge the timeline: ${e.message}`));
    }
  }

  private async supervise(
    rdzv: Rendezvous,
    world: World,
    addr: StoreAddress,
    metrics: MetricsHook,
  ): Promise<number> {
    const cfg = this.cfg;
    let attempt = 0;
    for (;;) {
      const group = this.startWorkers(world, attempt, addr, metrics);
      this.group = group;
      let stop: StopReason | undefined;
      let localSignal: ForwardedSignal | undefined = this.signalled;
      let markedOk = false;
      const failure = group.firstFailure.then((f) => ({ t: 'fail' as const, f }));
      const signal = new Promise<ForwardedSignal>((r) => this.onSignal.push(r)).then((s) => ({
        t: 'sig' as const,
        s,
      }));
      try {
        while (stop === undefined) {
          if (localSignal !== undefined) {
            stop = await rdzv.requestStop(attempt, {
              kind: 'abort',
              nodeRank: world.nodeRank,
              signal: localSignal,
              atMs: Date.now(),
            });
            break;
          }
          const ev = await Promise.race([
            failure,
            signal,
            sleep(cfg.monitorIntervalMs).then(() => ({ t: 'tick' as const })),
          ]);
          if (ev.t === 'fail') {
            stop = await rdzv.requestStop(attempt, failureReason(world.nodeRank, ev.f));
          } else if (ev.t === 'sig') {
            localSignal = ev.s;
          } else {
            const remote = await rdzv.pollStop(attempt);
            const lost = remote ? [] : await rdzv.heartbeat(attempt);
            if (remote) stop = remote;
            else if (lost.length > 0) {
              stop = await rdzv.requestStop(attempt, {
                kind: 'lost',
                nodeRank: world.nodeRank,
                lost,
                atMs: Date.now(),
              });
            } else if (group.succeeded) {
              if (!markedOk) {
                markedOk = true;
                await rdzv.markSucceeded(attempt);
              }
              if (await rdzv.pollAllSucceeded(attempt)) {
                for (const e of group.exits) metrics.detach(e);
                return 0;
              }
            }
          }
        }
      } catch (e) {
        await group.stop(cfg.shutdownTimeoutMs);
        if (e instanceof LaunchError) throw e;
        throw new LaunchError(
          `lost the rendezvous store at ${addr.host}:${addr.port}: ${(e as Error).message}`,
        );
      }
      const exits = await group.stop(cfg.shutdownTimeoutMs, localSignal ?? 'SIGTERM');
      this.status?.end(); // the last progress stays; what follows starts on a line of its own
      for (const e of exits) metrics.detach(e);
      const localFailures = exits.filter(isFailure).sort((a, b) => a.atMs - b.atMs);

      if (localSignal !== undefined) {
        say(`received ${localSignal}; stopped ${exits.length} worker(s) of attempt ${attempt}`);
        return 128 + signalNumber(localSignal);
      }
      if (stop.kind === 'abort') {
        say(
          `node ${stop.nodeRank} was stopped by ${stop.signal}; stopped ${exits.length} worker(s) of attempt ${attempt}`,
        );
        return 1;
      }
      if (stop.kind === 'lost') {
        say(
          `the launcher of node(s) ${stop.lost.join(', ')} stopped answering for ${cfg.heartbeatTimeoutMs / 1000}s ` +
            `(killed, or its host is down); stopped ${exits.length} worker(s) of attempt ${attempt}`,
        );
        return 1;
      }
      if (attempt < world.maxRestarts) {
        say(
          `attempt ${attempt} failed: rank ${stop.rank} (node ${stop.nodeRank}) ${describeExit(stop.code, stop.signal)}; ` +
            `restarting all workers (restart ${attempt + 1} of ${world.maxRestarts})`,
        );
        await this.untilSignal(rdzv.awaitAllStopped(attempt));
        attempt = await this.untilSignal(rdzv.nextAttempt(attempt));
        metrics.restart();
        continue;
      }
      for (const line of failureSummary(cfg.runId, attempt + 1, stop, localFailures)) say(line);
      return 1;
    }
  }

  private startWorkers(world: World, attempt: number, addr: StoreAddress, metrics: MetricsHook): WorkerGroup {
    const cfg = this.cfg;
    const watchdog = watchdogImportUrl({
      launcherPid: process.pid,
      intervalMs: cfg.watchdogIntervalMs ?? 500,
      graceMs: cfg.watchdogGraceMs ?? 2000,
    });
    const specs: WorkerSpawn[] = [];
    for (let localRank = 0; localRank < world.localWorldSize; localRank++) {
      const rank = world.rankOffset + localRank;
      const env = workerEnv(this.status ? { MTL_PROGRESS: 'tty', ...cfg.env } : cfg.env, {
        rank,
        localRank,
        worldSize: world.worldSize,
        localWorldSize: world.localWorldSize,
        groupRank: world.nodeRank,
        groupWorldSize: world.nnodes,
        masterAddr: addr.host,
        masterPort: addr.port,
        runId: cfg.runId,
        runToken: cfg.runToken,
        restartCount: attempt,
        maxRestarts: world.maxRestarts,
        timelineFile: cfg.timeline,
        roleName: cfg.roleName,
        nodeAddr: cfg.localAddr,
      });
      const shown = cfg.localRanksFilter === undefined || cfg.localRanksFilter.has(localRank);
      const redirect = cfg.redirects(localRank);
      const tee = cfg.tee(localRank);
      const logs = new WorkerLogs({
        rank,
        console: { out: shown && (!redirect.out || tee.out), err: shown && (!redirect.err || tee.err) },
        dir:
          cfg.logDir === undefined
            ? undefined
            : join(cfg.logDir, cfg.runId, `attempt_${attempt}`, `rank${rank}`),
        status: this.status,
      });
      const run = cfg.entry.exec ? execShimArgv(cfg.entry.exec) : [cfg.entry.program, ...cfg.entry.args];
      const argv = [process.execPath, ...cfg.entry.execArgv, '--import', watchdog, ...run];
      specs.push({ rank, localRank, argv, env, cwd: cfg.cwd, logs });
    }
    const group = new WorkerGroup(specs);
    for (const w of group.workers) metrics.attach(w.spec.rank, w.child);
    return group;
  }

  private installSignalHandlers(): void {
    for (const sig of FORWARDED_SIGNALS) {
      const h = (): void => {
        // Every signal reaches every worker; the first one also ends the run after the workers exit.
        this.group?.forward(sig);
        if (this.signalled === undefined) {
          this.signalled = sig;
          for (const r of this.onSignal.splice(0)) r(sig);
        }
      };
      this.handlers.set(sig, h);
      process.on(sig, h);
    }
  }

  private removeSignalHandlers(): void {
    for (const [sig, h] of this.handlers) process.off(sig, h);
  }

  /** Races a rendezvous step against a signal so that Ctrl-C during a long join exits at once. */
  private async untilSignal<T>(p: Promise<T>): Promise<T> {
    if (this.signalled) throw new SignalledError(this.signalled);
    const sig = new Promise<never>((_, reject) => this.onSignal.push((s) => reject(new SignalledError(s))));
    return Promise.race([p, sig]);
  }
}

class SignalledError extends Error {
  constructor(readonly signal: ForwardedSignal) {
    super(`received ${signal}`);
  }
}

function signalNumber(sig: ForwardedSignal): number {
  return constants.signals[sig];
}

function failureReason(nodeRank: number, e: WorkerExit): StopReason {
  return {
    kind: 'failure',
    nodeRank,
    rank: e.rank,
    localRank: e.localRank,
    pid: e.pid,
    code: e.code,
    signal: e.signal,
    atMs: e.atMs,
    stderrTail: e.stderrTail,
    detail: e.spawnError,
  };
}
