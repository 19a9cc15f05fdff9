import type { OpContext } from '../group/opContext.js';
import type { WireCodec } from '../wire/codec.js';
import { chunkStart, mod } from './chunks.js';
import { ringAllReduce } from './ringAllReduce.js';

/** Which node each rank is on, as the process group learned it at join. */
export interface NodeLayout {
  /** nodes[m] = the global ranks on node m, in rank order; every rank is on exactly one node. */
  nodes: readonly (readonly number[])[];
}

export interface HierSpec {
  codec: WireCodec;
  op: 'sum' | 'mean' | 'max';
  segmentElements: number;
  layout: NodeLayout;
  /** At most this many pieces in the pipeline (default 16). */
  maxPieces?: number;
}

/**
 * Whether the layout suits the hierarchical all-reduce: more than one node, more than one rank
 * per node, and the same number everywhere (local rank l on every node forms the l-th node ring).
 */
export function hierarchicalFits(layout: NodeLayout): boolean {
  const { nodes } = layout;
  const local = nodes[0]?.length ?? 0;
  return nodes.length > 1 && local > 1 && nodes.every((ranks) => ranks.length === local);
}

/**
 * Two-level all-reduce for nodes × local ranks, as NCCL and Horovod do it. For each piece of
 * the buffer:
 *
 * 1. reduce-scatter within the node (shared memory): local rank l ends with the node's sum of
 *    shard l of the piece, 1/L of it;
 * 2. ring all-reduce of that shard across nodes, among the ranks with local rank l (one rank per
 *    node), so the L node rings run in parallel and only 1/L of the data crosses each;
 * 3. all-gather of the shards within the node.
 *
 * Pieces are pipelined: while piece k crosses between nodes (2), the node reduces piece k+1 (1)
 * and gathers piece k−1 (3), so the network link is kept busy. Phases 1 and 3 talk only to this
 * node's ranks and phase 2 only to other nodes' ranks, so the two chains never share a peer and
 * each keeps a fixed per-peer message order (the same on both sides of every link).
 *
 * Buffer safety is the flat ring's causality argument (sends go by reference): a region sent in
 * phase 1 is overwritten only in phase 3, by a message that depends on the final value of its
 * chunk, hence on that send having been received; phase 2 overwrites only this rank's shard, which
 * phase 1 never sends; phases 2 and 3 send regions that nothing overwrites later in the op. So the
 * sub-rings skip their own closing acknowledgements (which would idle the inter-node link once
 * per piece) and the op ends with one: every rank acknowledges the neighbours it received from
 * in both rings and returns once the neighbours it sent to have acknowledged it.
 *
 * Results are identical on every rank: phase 2 forwards the final bytes to the other nodes,
 * phase 3 forwards them within the node.
 */
export async function hierarchicalAllReduce(
  ctx: OpContext,
  buf: Float32Array,
  spec: HierSpec,
): Promise<void> {
  const { nodes } = spec.layout;
  const mine = nodes.find((ranks) => ranks.includes(ctx.rank));
  if (!mine) throw new Error(`${ctx.name}: rank ${ctx.rank} is on no node of the layout`);
  const L = mine.length;
  const l = mine.indexOf(ctx.rank);
  const across = nodes.map((ranks) => ranks[l]!);
  const { codec, segmentElements } = spec;
  // Enough pieces to overlap the phases, none smaller than one segment per local rank.
  const pieceLen = Math.max(segmentElements * L, Math.ceil(buf.length / (spec.maxPieces ?? 16)));
  const pieces = Math.max(1, Math.ceil(buf.length / pieceLen));
  const piece = (k: number) => buf.subarray(k * pieceLen, Math.min((k + 1) * pieceLen, buf.length));
  const shard = (k: number) => {
    const p = piece(k);
    return p.subarray(chunkStart(p.length, L, l), chunkStart(p.length, L, l + 1));
  };
  const reduced = pieces > 1 ? Array.from({ length: pieces }, deferred) : [];
  const crossed = pieces > 1 ? Array.from({ length: pieces }, deferred) : [];
  // Sub-rings run concurrently: the pool is reset only once every phase is acknowledged.
  ctx.reserveSends(codec.bytesPerElement === 4 ? 0 : 2 * buf.length * codec.bytesPerElement);
  const common = { codec, segmentElements, callerPool: true, acks: false };
  const reduceInNode = (k: number) =>
    ringAllReduce(ctx, piece(k), {
      ...common,
      // The node's partial sums: max stays max; a mean divides once, by the whole group, in 2.
      op: spec.op === 'max' ? 'max' : 'sum',
      allGather: false,
      members: mine,
    });
  const crossNodes = (k: number) =>
    ringAllReduce(ctx, shard(k), {
      ...common,
      op: spec.op,
      allGather: true,
      members: across,
      divisor: ctx.size,
    });
  const gatherInNode = (k: number) => ringAllGather(ctx, piece(k), mine, codec, segmentElements);

  if (pieces === 1) {
    await reduceInNode(0);
    await crossNodes(0);
    await gatherInNode(0);
  } else {
    // Node chain: 1(0) 1(1) 3(0) 1(2) 3(1) … 1(K−1) 3(K−2) 3(K−1); the cross-node chain: 2(0) 2(1) ….
    const inNode = async () => {
      for (let k = 0; k < pieces; k++) {
        await reduceInNode(k);
        reduced[k]!.resolve();
        if (k > 0) {
          await crossed[k - 1]!.promise;
          await gatherInNode(k - 1);
        }
      }
      await crossed[pieces - 1]!.promise;
      await gatherInNode(pieces - 1);
    };
    const acrossNodes = async () => {
      for (let k = 0; k < pieces; k++) {
        await reduced[k]!.promise;
        await crossNodes(k);
        crossed[k]!.resolve();
      }
    };
    const chains = [inNode(), acrossNodes()];
    try {
      await Promise.all(chains);
    } catch (err) {
      // The other chain may wait on this one's pieces: end it too, then report the first failure.
      for (const d of [...reduced, ...crossed]) d.reject(err as Error);
      await Promise.allSettled(chains);
      throw err;
    }
  }
  // The one closing acknowledgement: each ring's left neighbour gets ours, and we wait for our
  // right neighbours', the last message they send us, after every one of our sends reached them.
  const at = (ring: readonly number[], step: number) => {
    const i = ring.indexOf(ctx.rank);
    return ring[mod(i + step, ring.length)]!;
  };
  ctx.sendAck(at(mine, -1));
  ctx.sendAck(at(across, -1));
  await ctx.recvAck(at(mine, 1));
  await ctx.recvAck(at(across, 1));
  ctx.releaseSends();
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (e: Error) => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined); // rejected only to end a waiting chain; the failure is reported once
  return { promise, resolve, reject };
}

/**
 * Ring all-gather among `members` where member i already holds chunk i of `buf` (values the wire
 * represents exactly: phase 2 rounded them). The owner encodes its chunk once; everyone else
 * forwards the received bytes unchanged, so all members end bit-identical. The caller owns the
 * send pool and the closing acknowledgement.
 */
async function ringAllGather(
  ctx: OpContext,
  buf: Float32Array,
  members: readonly number[],
  codec: WireCodec,
  segLen: number,
): Promise<void> {
  const n = members.length;
  const r = members.indexOf(ctx.rank);
  const left = members[mod(r - 1, n)]!;
  const right = members[mod(r + 1, n)]!;
  const segs = Math.max(1, Math.ceil(Math.ceil(buf.length / n) / segLen));
  const segment = (c: number, j: number): Float32Array => {
    const start = chunkStart(buf.length, n, c);
    const end = chunkStart(buf.length, n, c + 1);
    const s = Math.min(start + j * segLen, end);
    return buf.subarray(s, Math.min(s + segLen, end));
  };
  for (let j = 0; j < segs; j++) {
    const seg = segment(r, j);
    ctx.sendFrom(right, seg.length, (take) => codec.encode(seg, take));
  }
  for (let k = 0; k < n - 1; k++) {
    const c = mod(r - 1 - k, n);
    for (let j = 0; j < segs; j++) {
      if (k < n - 2) await ctx.forward(left, right, segment(c, j), true);
      else await ctx.recvInto(left, segment(c, j));
    }
  }
}
