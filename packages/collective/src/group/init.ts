import { Packr } from 'msgpackr';
import { StoreClient } from '../store/client.js';
import type { PeerAddress, TransportKind } from '../transport/base.js';
import { NetTransport } from '../transport/netTransport.js';
import type { ShmOptions } from '../transport/shm.js';
import { ZmqTransport } from '../transport/zmqTransport.js';
import { defaultNodeId, layoutOf, routeAddressTo } from './nodeAddress.js';
import { ProcessGroup } from './processGroup.js';

const packr = new Packr({ useRecords: false });
const DEFAULT_SEGMENT_BYTES = 1 << 20;
const DEFAULT_SMALL_BYTES = 32 * 1024;

export interface ProcessGroupOptions {
  rank: number;
  worldSize: number;
  /** The rendezvous store: a connected client (left open) or its address (connected and closed here). */
  store: StoreClient | { host: string; port: number; token: string };
  runId: string;
  /** Namespaces the store keys so a restarted attempt never reads the previous one's. */
  restartCount?: number;
  /** Every wait on a peer, and the rendezvous, time out after this (default 120 s). */
  timeoutMs?: number;
  /**
   * 'auto' (default): shared memory for same-host peers (engine net; unix sockets when the shm
   * directory is unusable, logged once), tcp otherwise. 'ipc': unix sockets only; 'shm' insists on
   * shared memory; 'tcp': tcp everywhere.
   */
  transport?: TransportKind;
  /** Shared-memory rings: directory (default /dev/shm), slots per pair, bytes per slot, smallest payload sent through them. */
  shm?: Partial<ShmOptions>;
  /** Diagnostics such as the shared-memory fallback (default: console.warn). */
  log?: (line: string) => void;
  /** Interface to bind ring sockets on; default: the one that routes to the store. */
  bindHost?: string;
  /** Encrypt ring traffic with ZeroMQ CURVE (keys exchanged through the token-protected store); implies engine 'zmq'. */
  curve?: boolean;
  /**
   * Socket layer: 'net' (Node's own unix/TCP sockets, the default: lower latency and higher
   * throughput here) or 'zmq' (ZeroMQ Router/Dealer, needed for CURVE).
   */
  engine?: 'net' | 'zmq';
  /** Ranks must agree on it (e.g. the training config's hash); checked at join. */
  configHash?: string;
  smallBytes?: number;
  segmentBytes?: number;
  /**
   * Which node this rank is on: ranks with the same id use shared memory (or unix sockets) and
   * form one node of the hierarchical all-reduce; others use tcp. Default: the hostname and the
   * network namespace (a process in another namespace is another node).
   */
  node?: string;
  /** Large all-reduces: 'auto' (default; hierarchical when nodes × local ranks fit), 'ring' or 'hier'. */
  algorithm?: 'auto' | 'ring' | 'hier';
  /** The hierarchical all-reduce's pipeline depth in pieces (default 16; 1: phases in sequence). */
  hierPieces?: number;
  /** Called with diagnostics for dropped messages (strangers, garbage). */
  onDrop?: (reason: string) => void;
}

function envInt(env: NodeJS.ProcessEnv, name: string, fallback?: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') {
    if (fallback !== undefined) return fallback;
    throw new Error(
      `initProcessGroup: environment variable ${name} is not set (run under mtl-launch or pass options)`,
    );
  }
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0)
    throw new Error(`initProcessGroup: ${name}=${JSON.stringify(raw)} is not a non-negative integer`);
  return n;
}

function envStr(env: NodeJS.ProcessEnv, name: string): string {
  const v = env[name];
  if (v === undefined || v === '')
    throw new Error(
      `initProcessGroup: environment variable ${name} is not set (run under mtl-launch or pass options)`,
    );
  return v;
}

/** Options from the launcher's environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, MTL_RUN_ID, MTL_RUN_TOKEN, MTL_RESTART_COUNT). */
export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): ProcessGroupOptions {
  const transport = env.MTL_PG_TRANSPORT;
  const engine = env.MTL_PG_ENGINE;
  const algorithm = env.MTL_PG_ALGO;
  if (algorithm !== undefined && algorithm !== 'auto' && algorithm !== 'ring' && algorithm !== 'hier') {
    throw new Error(
      `initProcessGroup: MTL_PG_ALGO must be auto, ring or hier, got ${JSON.stringify(algorithm)}`,
    );
  }
  if (engine !== undefined && engine !== 'net' && engine !== 'zmq') {
    throw new Error(`initProcessGroup: MTL_PG_ENGINE must be net or zmq, got ${JSON.stringify(engine)}`);
  }
  if (
    transport !== undefined &&
    transport !== 'auto' &&
    transport !== 'tcp' &&
    transport !== 'ipc' &&
    transport !== 'shm'
  ) {
    throw new Error(
      `initProcessGroup: MTL_PG_TRANSPORT must be auto, shm, ipc or tcp, got ${JSON.stringify(transport)}`,
    );
  }
  return {
    rank: envInt(env, 'RANK'),
    worldSize: envInt(env, 'WORLD_SIZE'),
    store: {
      host: envStr(env, 'MASTER_ADDR'),
      port: envInt(env, 'MASTER_PORT'),
      token: env.MTL_RUN_TOKEN ?? '',
    },
    runId: envStr(env, 'MTL_RUN_ID'),
    restartCount: envInt(env, 'MTL_RESTART_COUNT', 0),
    timeoutMs: envInt(env, 'MTL_PG_TIMEOUT_MS', 120_000),
    ...(transport ? { transport } : {}),
    ...(engine ? { engine } : {}),
    ...(algorithm ? { algorithm } : {}),
    ...(env.MTL_NODE_ID ? { node: env.MTL_NODE_ID } : {}),
    ...(env.MTL_PG_HIER_PIECES ? { hierPieces: envInt(env, 'MTL_PG_HIER_PIECES') } : {}),
    ...(env.MTL_NODE_ADDR ? { bindHost: env.MTL_NODE_ADDR } : {}),
    ...(env.MTL_PG_CURVE === '1' ? { curve: true } : {}),
    ...(env.MTL_PG_SEGMENT_BYTES ? { segmentBytes: envInt(env, 'MTL_PG_SEGMENT_BYTES') } : {}),
    ...(env.MTL_PG_SMALL_BYTES ? { smallBytes: envInt(env, 'MTL_PG_SMALL_BYTES') } : {}),
    shm: {
      ...(env.MTL_PG_SHM_DIR ? { dir: env.MTL_PG_SHM_DIR } : {}),
      ...(env.MTL_PG_SHM_SLOTS ? { slots: envInt(env, 'MTL_PG_SHM_SLOTS') } : {}),
      ...(env.MTL_PG_SHM_SLOT_BYTES ? { slotBytes: envInt(env, 'MTL_PG_SHM_SLOT_BYTES') } : {}),
    },
  };
}

/** Per directed same-host pair at most this much shared memory (Docker's default /dev/shm is 64 MiB). */
const SHM_PAIR_BYTES = 8 << 20;

/**
 * Ring geometry: a slot holds one ring segment (f32 bytes; f16/bf16 segments are half), as many
 * slots as fit in 8 MiB (at least 2); payloads up to the direct path's size stay on the socket.
 */
function shmOptions(
  o: Partial<ShmOptions> | undefined,
  segmentBytes: number,
  smallBytes: number,
): ShmOptions {
  const slotBytes = o?.slotBytes ?? Math.max(64, Math.max(16, segmentBytes >> 2) * 4);
  return {
    dir: o?.dir ?? '/dev/shm',
    slotBytes,
    slots: o?.slots ?? Math.max(2, Math.min(64, Math.floor(SHM_PAIR_BYTES / slotBytes))),
    minBytes: o?.minBytes ?? Math.min(smallBytes + 1, slotBytes),
    ...(o?.mmap !== undefined ? { mmap: o.mmap } : {}),
  };
}

interface Announcement extends PeerAddress {
  node: string;
  engine: string;
  runId: string;
  configHash: string | null;
}

/**
 * Joins the process group: binds this rank's ring inbox, publishes its address
 * in the store, reads everyone's, connects, and runs a first barrier so that a
 * rank that never comes is named here rather than in the first all-reduce.
 */
export async function initProcessGroup(options?: ProcessGroupOptions): Promise<ProcessGroup> {
  const o = options ?? optionsFromEnv();
  const { rank, worldSize } = o;
  if (!Number.isInteger(worldSize) || worldSize < 1)
    throw new Error(`initProcessGroup: worldSize must be a positive integer, got ${worldSize}`);
  if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize)
    throw new Error(`initProcessGroup: rank ${rank} is outside 0..${worldSize - 1}`);
  const timeoutMs = o.timeoutMs ?? 120_000;
  const ownStore = !(o.store instanceof StoreClient);
  const store =
    o.store instanceof StoreClient
      ? o.store
      : await StoreClient.connect({ ...o.store, timeoutMs, name: `rank ${rank}` });
  const closeStore = async () => {
    if (ownStore) await store.close();
  };
  if (o.curve && o.engine === 'net') throw new Error("initProcessGroup: CURVE encryption needs engine 'zmq'");
  const engine = o.engine ?? (o.curve ? 'zmq' : 'net');
  if (engine === 'zmq' && o.transport === 'shm')
    throw new Error("initProcessGroup: transport 'shm' needs engine 'net'");
  let transport: ZmqTransport | NetTransport | null = null;
  try {
    const bindHost = o.bindHost ?? (await routeAddressTo(store.host));
    const node = o.node ?? defaultNodeId();
    const common = {
      rank,
      size: worldSize,
      bindHost,
      host: node,
      ...(o.transport ? { transport: o.transport } : {}),
      ...(o.onDrop ? { onDrop: o.onDrop } : {}),
    };
    transport =
      engine === 'zmq'
        ? await ZmqTransport.open({ ...common, ...(o.curve ? { curve: true } : {}) })
        : await NetTransport.open({
            ...common,
            shm: shmOptions(
              o.shm,
              o.segmentBytes ?? DEFAULT_SEGMENT_BYTES,
              o.smallBytes ?? DEFAULT_SMALL_BYTES,
            ),
            ...(o.log ? { log: o.log } : {}),
          });
    const ns = `pg/${o.runId}/${o.restartCount ?? 0}/`;
    const me: Announcement = {
      ...transport.self,
      node,
      engine,
      runId: o.runId,
      configHash: o.configHash ?? null,
    };
    await store.set(`${ns}addr/${rank}`, packr.pack(me));
    const peers = await Promise.all(
      Array.from({ length: worldSize }, async (_, p): Promise<Announcement> => {
        let raw: Uint8Array;
        try {
          raw = await store.get(`${ns}addr/${p}`, timeoutMs);
        } catch (err) {
          throw new Error(
            `initProcessGroup: rank ${p} did not join run ${o.runId} within ${timeoutMs} ms (${(err as Error).message})`,
          );
        }
        const a = packr.unpack(raw) as Announcement;
        if (a.rank !== p) throw new Error(`initProcessGroup: store key ${ns}addr/${p} holds rank ${a.rank}`);
        if (a.engine !== engine)
          throw new Error(`initProcessGroup: rank ${p} uses engine ${a.engine}, rank ${rank} uses ${engine}`);
        if (a.configHash !== me.configHash) {
          throw new Error(
            `initProcessGroup: rank ${p} runs config ${a.configHash ?? '(none)'}, rank ${rank} runs ${me.configHash ?? '(none)'}`,
          );
        }
        return a;
      }),
    );
    transport.connect(peers);
    if (transport instanceof NetTransport) await transport.shmSettled(Math.min(timeoutMs, 10_000));
    const layout = layoutOf(peers.map((p) => p.node));
    const shape = layout.nodes.map((r) => r.length);
    if (rank === 0 && shape.length > 1 && shape.some((l) => l !== shape[0]) && o.algorithm !== 'ring')
      (o.log ?? console.warn)(
        `initProcessGroup: nodes hold ${shape.join('+')} ranks (uneven): all-reduce uses the flat ring, not the hierarchical one`,
      );
    const group = new ProcessGroup(transport, {
      timeoutMs,
      layout,
      ...(o.algorithm ? { algorithm: o.algorithm } : {}),
      ...(o.hierPieces !== undefined ? { hierPieces: o.hierPieces } : {}),
      ...(o.smallBytes !== undefined ? { smallBytes: o.smallBytes } : {}),
      ...(o.segmentBytes !== undefined ? { segmentBytes: o.segmentBytes } : {}),
    });
    await closeStore();
    await group.barrier();
    return group;
  } catch (err) {
    await transport?.close();
    await closeStore();
    throw err;
  }
}
