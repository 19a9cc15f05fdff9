/**
 * Rendezvous: how the launchers of a run find each other and agree on attempts. The agent codes
 * against this interface; `StoreRendezvous` implements it on the collective's key-value store.
 */

/** What a node brings to the rendezvous. */
export interface NodeSpec {
  runId: string;
  nnodes: number;
  /** null: take the next free rank (c10d without --node-rank); the store's host is always 0. */
  nodeRank: number | null;
  /** This node hosts the store: it publishes the run's identity and keeps the store until all left. */
  hostsStore: boolean;
  localWorldSize: number;
  maxRestarts: number;
  host: string;
  pid: number;
}

/** What the rendezvous tells a node once the world is complete. */
export interface World {
  nnodes: number;
  nodeRank: number;
  worldSize: number;
  /** Global rank of this node's local rank 0. */
  rankOffset: number;
  localWorldSize: number;
  /** Agreed by all nodes (node 0's value). */
  maxRestarts: number;
}

/** Why an attempt stops; the first one posted wins and every node reports it. */
export type StopReason =
  | {
      kind: 'failure';
      nodeRank: number;
      rank: number;
      localRank: number;
      pid?: number | undefined;
      code: number | null;
      signal: string | null;
      atMs: number;
      stderrTail: string[];
      detail?: string | undefined;
    }
  | { kind: 'abort'; nodeRank: number; signal: string; atMs: number }
  /** `nodeRank` saw the launchers of `lost` stop answering (killed, or their host is down). */
  | { kind: 'lost'; nodeRank: number; lost: number[]; atMs: number };

export interface Rendezvous {
  /** Registers this node and resolves with the world once every node has joined. */
  join(): Promise<World>;
  /** Posts why `attempt` must stop; resolves with the reason that won (the first posted). */
  requestStop(attempt: number, reason: StopReason): Promise<StopReason>;
  /** The reason `attempt` stops, once any node posted one. */
  pollStop(attempt: number): Promise<StopReason | null>;
  /** Every worker of this node exited 0 in `attempt`. */
  markSucceeded(attempt: number): Promise<void>;
  /** True once every node's workers exited 0 in `attempt`. */
  pollAllSucceeded(attempt: number): Promise<boolean>;
  /** This node's workers of `attempt` are gone; resolves when every node says the same. */
  awaitAllStopped(attempt: number): Promise<void>;
  /** The attempt after `attempt`, agreed by all nodes. */
  nextAttempt(attempt: number): Promise<number>;
  /**
   * Beats this node's heartbeat (at most once a second) and returns the nodes whose heartbeat has
   * not moved for the heartbeat timeout. Tracking restarts at every `attempt`.
   */
  heartbeat(attempt: number): Promise<number[]>;
  /** Leaves the run; node 0 keeps the store up until the others left (bounded wait). */
  leave(): Promise<void>;
}
