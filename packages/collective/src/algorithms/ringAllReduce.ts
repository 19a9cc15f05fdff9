import type { OpContext } from '../group/opContext.js';
import type { WireCodec } from '../wire/codec.js';
import { chunkStart, mod } from './chunks.js';

export interface RingSpec {
  codec: WireCodec;
  op: 'sum' | 'mean' | 'max';
  /** Largest segment (elements): frames stay small so send, receive and reduce overlap. */
  segmentElements: number;
  /** false: stop after the reduce-scatter (each rank holds its reduced chunk). */
  allGather: boolean;
  /**
   * The ring's members (global ranks, in ring order; this rank among them): a sub-ring such as
   * one node's ranks. Default: every rank in rank order. Member i owns chunk i.
   */
  members?: readonly number[];
  /** What 'mean' divides by (default: the ring's size); a sub-ring of a larger reduction passes the whole group's. */
  divisor?: number;
  /**
   * The caller reserves and releases the op's send pool (sub-rings running concurrently in one
   * op must not reset it under each other's sends in flight). Default: this call does.
   */
  callerPool?: boolean;
  /**
   * false: skip the closing acknowledgement exchange; the caller acknowledges this ring's
   * neighbours itself before the op returns (it must not touch the sent regions until then).
   */
  acks?: boolean;
}

/**
 * Bandwidth-optimal ring all-reduce: reduce-scatter then all-gather, 2·(N−1)
 * steps, each chunk cut into segments that are forwarded as soon as they are
 * reduced (a pipeline, as Gloo's chunked ring and NCCL do).
 *
 * Rank r owns chunk r at the end of the reduce-scatter. Reduce-scatter step k
 * sends chunk r−1−k and receives chunk r−2−k; all-gather step k sends chunk
 * r−k and receives r−1−k. Payloads go out by reference, so buffer safety is by
 * causality: every region we overwrite arrives in a message that depends on
 * the send of that region having been received, except the last sends, which
 * the right neighbour confirms with an acknowledgement before we return.
 */
export async function ringAllReduce(ctx: OpContext, buf: Float32Array, spec: RingSpec): Promise<void> {
  const members = spec.members;
  const n = members ? members.length : ctx.size;
  const r = members ? members.indexOf(ctx.rank) : ctx.rank;
  if (r < 0) throw new Error(`${ctx.name}: rank ${ctx.rank} is not a member of ring [${members!.join(',')}]`);
  const left = members ? members[mod(r - 1, n)]! : mod(r - 1, n);
  const right = members ? members[mod(r + 1, n)]! : mod(r + 1, n);
  const { codec, segmentElements: segLen } = spec;
  const elemOp = spec.op === 'max' ? 'max' : 'sum';
  const divisor = spec.op === 'mean' ? (spec.divisor ?? n) : 1;
  const segs = Math.max(1, Math.ceil(Math.ceil(buf.length / n) / segLen));
  const segment = (c: number, j: number): Float32Array => {
    const start = chunkStart(buf.length, n, c);
    const end = chunkStart(buf.length, n, c + 1);
    const s = Math.min(start + j * segLen, end);
    return buf.subarray(s, Math.min(s + segLen, end));
  };
  // A partial sum that is only forwarded (its chunk is overwritten by the all-gather) is reduced
  // and encoded in one pass where the codec has the kernel.
  const fused = spec.allGather ? codec.reduceEncode : undefined;
  const reduceEncode = (payload: Uint8Array, dst: Float32Array, take: (bytes: number) => Uint8Array) => {
    if (fused) return fused(payload, dst, elemOp, take);
    codec.reduceInto(payload, dst, elemOp);
    return codec.encode(dst, take);
  };
  // Sends: n·segs encodes; all-gather forwards of shared-memory payloads: (n−2)·segs more.
  if (!spec.callerPool)
    ctx.reserveSends(
      codec.bytesPerElement === 4 ? 0 : (2 * n - 2) * segs * (segLen * codec.bytesPerElement + 8),
    );

  // Reduce-scatter.
  for (let j = 0; j < segs; j++) {
    const seg = segment(mod(r - 1, n), j);
    ctx.sendFrom(right, seg.length, (take) => codec.encode(seg, take));
  }
  for (let k = 0; k < n - 1; k++) {
    const c = mod(r - 2 - k, n);
    const last = k === n - 2;
    for (let j = 0; j < segs; j++) {
      const dst = segment(c, j);
      if (!last) {
        await ctx.recvReduceInto(left, (p) =>
          ctx.sendFrom(right, dst.length, (t) => reduceEncode(p, dst, t)),
        );
      } else if (spec.allGather) {
        await ctx.recvReduceInto(left, (p) =>
          ctx.sendFrom(right, dst.length, (t) => codec.reduceFinal(p, dst, elemOp, divisor, t)!),
        );
      } else {
        await ctx.recvReduceInto(left, (p) => codec.reduceFinal(p, dst, elemOp, divisor, null));
      }
    }
  }
  // All-gather: forward the bytes received (never re-encode), so every rank ends bit-identical.
  if (spec.allGather) {
    for (let k = 0; k < n - 1; k++) {
      const c = mod(r - 1 - k, n);
      for (let j = 0; j < segs; j++) {
        if (k < n - 2) await ctx.forward(left, right, segment(c, j), true);
        else await ctx.recvInto(left, segment(c, j));
      }
    }
  }
  if (spec.acks !== false) {
    ctx.sendAck(left);
    await ctx.recvAck(right);
  }
  if (!spec.callerPool) ctx.releaseSends();
}
