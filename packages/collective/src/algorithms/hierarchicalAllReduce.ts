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
 * Two-level all-reduce for nodes × local ranks, as NCCL and Horovod do it:
 *
 * 1. reduce-scatter within the node (shared memory): local rank l ends with the node's sum of
 *    shard l, 1/L of the buffer;
 * 2. ring all-reduce of shard l across nodes, among the ranks with local rank l (one rank per
 *    node), so the L node rings run in parallel and only 1/L of the buffer crosses each of them;
 * 3. all-gather of the shards within the node.
 *
 * Every phase is the flat ring's schedule on a sub-ring and ends with its acknowledgement, so
 * the by-reference buffer rules are the ring's. Results are identical on every rank: phase 2
 * forwards the final bytes to the other nodes, phase 3 forwards them within the node.
 */
export async function hierarchicalAllReduce(
  ctx: OpContext,
  buf: Float32Array,
  spec: HierSpec,
): Promise<void> {
  const { nodes } = spec.layout;
  const node = nodes.findIndex((ranks) => ranks.includes(ctx.rank));
  const mine = nodes[node];
  if (!mine) throw new Error(`${ctx.name}: rank ${ctx.rank} is on no node of the layout`);
  const L = mine.length;
  const l = mine.indexOf(ctx.rank);
  const { codec, segmentElements } = spec;
  const shard = buf.subarray(chunkStart(buf.length, L, l), chunkStart(buf.length, L, l + 1));
  // 1. The node's partial sums (max stays max; a mean divides once, by the whole group, in 2).
  await ringAllReduce(ctx, buf, {
    codec,
    op: spec.op === 'max' ? 'max' : 'sum',
    segmentElements,
    allGather: false,
    members: mine,
  });
  // 2. Local rank l of every node: the group's result for shard l.
  await ringAllReduce(ctx, shard, {
    codec,
    op: spec.op,
    segmentElements,
    allGather: true,
    members: nodes.map((ranks) => ranks[l]!),
    divisor: ctx.size,
  });
  // 3. Every shard to every local rank.
  await ringAllGather(ctx, buf, mine, codec, segmentElements);
}

/**
 * Ring all-gather among `members` where member i already holds chunk i of `buf` (values the wire
 * represents exactly: phase 2 rounded them). The owner encodes its chunk once; everyone else
 * forwards the received bytes unchanged, so all members end bit-identical.
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
  ctx.reserveSends(codec.bytesPerElement === 4 ? 0 : n * segs * (segLen * codec.bytesPerElement + 8));
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
  ctx.sendAck(left);
  await ctx.recvAck(right);
  ctx.releaseSends();
}
