import { LaunchError } from './errors.js';
import type { NodeSpec, Rendezvous, StopReason, World } from './rendezvous.js';

/** The part of the collective's StoreClient the launcher protocol needs. */
export interface KeyValueStore {
  set(key: string, value: Uint8Array | string): Promise<unknown>;
  get(key: string, timeoutMs?: number): Promise<Uint8Array>;
  tryGet(key: string): Promise<Uint8Array | null | undefined>;
  add(key: string, delta: number): Promise<number>;
  compareSet(
    key: string,
    expected: Uint8Array | string | null,
    desired: Uint8Array | string,
  ): Promise<Uint8Array>;
  wait(keys: string[], timeoutMs?: number): Promise<unknown>;
  close(): Promise<unknown> | unknown;
}

export interface StoreRendezvousOptions {
  node: NodeSpec;
  /** `host:port` of the store, for messages. */
  address: string;
  /** How long to wait for the other nodes (join, and the stop barrier between attempts). */
  timeoutMs: number;
  /** How long node 0 keeps the store for the others to leave. */
  leaveTimeoutMs?: number;
  /** How long the stop barrier between attempts waits (default `timeoutMs`). */
  stopTimeoutMs?: number;
  /** A node whose heartbeat did not move for this long is lost (default 30 s). */
  heartbeatTimeoutMs?: number;
}

const NS = 'mtl-launch/';
const text = new TextDecoder();
const str = (v: Uint8Array): string => text.decode(v);

interface NodeRecord {
  host: string;
  pid: number;
  localWorldSize: number;
  nonce: string;
}

/**
 * The multi-node protocol on the rendezvous store (node 0 is authoritative for the run's identity):
 *
 *   run-id, nnodes, max-restarts   set by node 0; the others compare and refuse a mismatch
 *   node/<r>                       claimed with compare-and-set: a second claim is a duplicate rank
 *   joined, closed                 join counter; `closed` once complete: later joins are refused
 *   attempt                        the current attempt, advanced with compare-and-set
 *   attempt/<k>/stop               why attempt k stops; the first reason posted wins
 *   attempt/<k>/ok                 nodes whose workers all exited 0
 *   attempt/<k>/stopped/<r>        node r's workers are gone (barrier before attempt k+1)
 *   hb/<r>                         node r's heartbeat counter
 *   left                           nodes done with the store (node 0 waits before closing it)
 */
export class StoreRendezvous implements Rendezvous {
  private world: World | undefined;
  /** This node's rank: given, or assigned in `join`. */
  private rank = -1;
  private beatAtMs = 0;
  private beatAttempt = -1;
  /** Per node: the last heartbeat value seen and when it last changed (local clock). */
  private seen: Array<{ value: number; changedAtMs: number }> = [];

  constructor(
    private readonly store: KeyValueStore,
    private readonly o: StoreRendezvousOptions,
  ) {}

  async join(): Promise<World> {
    const { node } = this.o;
    const s = this.store;
    if (node.hostsStore) {
      await s.set(NS + 'run-id', node.runId);
      await s.set(NS + 'nnodes', String(node.nnodes));
      await s.set(NS + 'max-restarts', String(node.maxRestarts));
      await s.set(NS + 'attempt', '0');
    }
    const storeRunId = str(await this.waitKey('run-id'));
    if (storeRunId !== node.runId) {
      throw new LaunchError(
        `rendezvous refused: this node's run id is '${node.runId}' but the store at ${this.o.address} serves run '${storeRunId}'`,
      );
    }
    const storeNnodes = Number(str(await this.waitKey('nnodes')));
    if (storeNnodes !== node.nnodes) {
      throw new LaunchError(
        `rendezvous refused: this node says --nnodes ${node.nnodes} but run '${node.runId}' has ${storeNnodes} nodes`,
      );
    }
    const maxRestarts = Number(str(await this.waitKey('max-restarts')));
    const late = (): LaunchError =>
      new LaunchError(
        `rendezvous refused: the world of run '${node.runId}' is already complete (${node.nnodes} nodes joined); node rank ${node.nodeRank ?? '(to be assigned)'} came too late`,
      );
    if ((await s.tryGet(NS + 'closed')) != null) throw late();
    // Assigned ranks count up from 1 in order of arrival; the host took 0.
    const rank = node.nodeRank ?? (node.hostsStore ? 0 : await s.add(NS + 'next-node', 1));
    if (rank >= node.nnodes) throw late();
    this.rank = rank;
    const me: NodeRecord = {
      host: node.host,
      pid: node.pid,
      localWorldSize: node.localWorldSize,
      nonce: Math.random().toString(36).slice(2),
    };
    const claimed = str(await s.compareSet(NS + `node/${rank}`, null, JSON.stringify(me)));
    if (claimed !== JSON.stringify(me)) {
      const other = JSON.parse(claimed) as NodeRecord;
      throw new LaunchError(
        `rendezvous refused: node rank ${rank} of run '${node.runId}' is already taken by ${other.host} (launcher pid ${other.pid})`,
      );
    }
    const joined = await s.add(NS + 'joined', 1);
    if (joined === node.nnodes) await s.set(NS + 'closed', '1');
    const keys = Array.from({ length: node.nnodes }, (_, r) => NS + `node/${r}`);
    await this.waitAll(
      keys,
      (missing) =>
        `rendezvous timed out after ${this.o.timeoutMs / 1000}s: node rank(s) ${missing.join(', ')} of run '${node.runId}' did not join at ${this.o.address}`,
    );
    const records: NodeRecord[] = [];
    for (const k of keys) records.push(JSON.parse(str(await s.get(k, this.o.timeoutMs))) as NodeRecord);
    const sizes = records.map((r) => r.localWorldSize);
    this.world = {
      nnodes: node.nnodes,
      nodeRank: rank,
      worldSize: sizes.reduce((a, b) => a + b, 0),
      rankOffset: sizes.slice(0, rank).reduce((a, b) => a + b, 0),
      localWorldSize: node.localWorldSize,
      maxRestarts,
    };
    return this.world;
  }

  async requestStop(attempt: number, reason: StopReason): Promise<StopReason> {
    const v = await this.store.compareSet(NS + `attempt/${attempt}/stop`, null, JSON.stringify(reason));
    return JSON.parse(str(v)) as StopReason;
  }

  async pollStop(attempt: number): Promise<StopReason | null> {
    const v = await this.store.tryGet(NS + `attempt/${attempt}/stop`);
    return v == null ? null : (JSON.parse(str(v)) as StopReason);
  }

  async markSucceeded(attempt: number): Promise<void> {
    await this.store.add(NS + `attempt/${attempt}/ok`, 1);
  }

  async pollAllSucceeded(attempt: number): Promise<boolean> {
    return (await this.store.add(NS + `attempt/${attempt}/ok`, 0)) >= this.o.node.nnodes;
  }

  async awaitAllStopped(attempt: number): Promise<void> {
    const { node } = this.o;
    await this.store.set(NS + `attempt/${attempt}/stopped/${this.rank}`, '1');
    const keys = Array.from({ length: node.nnodes }, (_, r) => NS + `attempt/${attempt}/stopped/${r}`);
    await this.waitAll(
      keys,
      (missing) =>
        `node rank(s) ${missing.join(', ')} did not stop their workers of attempt ${attempt} within ${this.o.timeoutMs / 1000}s`,
    );
  }

  async nextAttempt(attempt: number): Promise<number> {
    const v = await this.store.compareSet(NS + 'attempt', String(attempt), String(attempt + 1));
    return Number(str(v));
  }

  async heartbeat(attempt: number): Promise<number[]> {
    const now = Date.now();
    const { nnodes } = this.o.node;
    const nodeRank = this.rank;
    if (attempt !== this.beatAttempt) {
      this.beatAttempt = attempt;
      this.seen = Array.from({ length: nnodes }, () => ({ value: -1, changedAtMs: now }));
    } else if (now - this.beatAtMs < 1000) return [];
    this.beatAtMs = now;
    await this.store.add(NS + `hb/${nodeRank}`, 1);
    const lost: number[] = [];
    for (let r = 0; r < nnodes; r++) {
      if (r === nodeRank) continue;
      const value = await this.store.add(NS + `hb/${r}`, 0);
      const s = this.seen[r]!;
      if (value !== s.value) {
        s.value = value;
        s.changedAtMs = now;
      } else if (now - s.changedAtMs > (this.o.heartbeatTimeoutMs ?? 30_000)) lost.push(r);
    }
    return lost;
  }

  async leave(): Promise<void> {
    const left = await this.store.add(NS + 'left', 1);
    if (!this.o.node.hostsStore) return;
    const deadline = Date.now() + (this.o.leaveTimeoutMs ?? 5000);
    let n = left;
    while (n < this.o.node.nnodes && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      n = await this.store.add(NS + 'left', 0);
    }
  }

  private async waitKey(name: string): Promise<Uint8Array> {
    try {
      return await this.store.get(NS + name, this.o.timeoutMs);
    } catch (e) {
      throw new LaunchError(
        `rendezvous timed out after ${this.o.timeoutMs / 1000}s waiting for node 0 at ${this.o.address} to publish the run (${(e as Error).message})`,
      );
    }
  }

  private async waitAll(
    keys: string[],
    message: (missing: number[]) => string,
    timeoutMs = this.o.timeoutMs,
  ): Promise<void> {
    try {
      await this.store.wait(keys, timeoutMs);
    } catch (e) {
      const missing: number[] = [];
      for (const [r, k] of keys.entries())
        if ((await this.store.tryGet(k).catch(() => null)) == null) missing.push(r);
      if (missing.length === 0) throw e;
      throw new LaunchError(message(missing));
    }
  }
}
