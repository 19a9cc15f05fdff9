import type { OpContext } from '../group/opContext.js';
import type { Message } from '../transport/types.js';
import type { WireCodec } from '../wire/codec.js';
import { bytesOf, type SendPool } from '../wire/views.js';
import { chunkStart, mod } from './chunks.js';

export interface RingSpec {
  codec: WireCodec;
  op: 'sum' | 'mean' | 'max';
  /** Largest segment (elements): frames stay small so send, receive and reduce overlap. */
  segmentElements: number;
  pool: SendPool;
  /** false: stop after the reduce-scatter (each rank holds its reduced chunk). */
  allGather: boolean;
  /** Reused receive memory (aligned) for payloads that are read out of shared memory before reducing. */
  scratch: (bytes: number) => Uint8Array;
}

/**
 * The payload's bytes, to be consumed before the next await: in place for a socket message or a
 * mapped shared-memory slot, else read into `scratch`.
 */
function payloadOf(m: Message, scratch: (bytes: number) => Uint8Array): Uint8Array {
  if (!m.readInto) return m.payload;
  return m.view?.() ?? readOut(m, scratch);
}

/** A shared-memory payload copied into memory of our own. */
function readOut(m: Message, take: (bytes: number) => Uint8Array): Uint8Array {
  const b = take(m.byteLength ?? 0);
  m.readInto!(b);
  return b;
}

function checkSize(m: Message, want: number): void {
  const got = m.byteLength ?? m.payload.byteLength;
  if (got !== want) throw new Error(`payload of ${got} bytes where ${want} bytes were expected`);
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
  const n = ctx.size;
  const r = ctx.rank;
  const left = mod(r - 1, n);
  const right = mod(r + 1, n);
  const { codec, segmentElements: segLen } = spec;
  const elemOp = spec.op === 'max' ? 'max' : 'sum';
  const count = buf.length;
  const maxChunk = Math.ceil(count / n);
  const segs = Math.max(1, Math.ceil(maxChunk / segLen));
  // Sends: n·segs encodes; all-gather forwards of shared-memory payloads: (n−2)·segs more.
  spec.pool.reserve(
    codec.bytesPerElement === 4 ? 0 : (2 * n - 2) * segs * (segLen * codec.bytesPerElement + 8),
  );
  const take = (bytes: number) => spec.pool.take(bytes);
  // Shared-memory payloads that are consumed at once are read where the codec's kernel reads them.
  const scratch = (bytes: number) => codec.inputArea?.(bytes) ?? spec.scratch(bytes);
  const segment = (c: number, j: number): Float32Array => {
    const start = chunkStart(count, n, c);
    const end = chunkStart(count, n, c + 1);
    const s = Math.min(start + j * segLen, end);
    return buf.subarray(s, Math.min(s + segLen, end));
  };

  // What a 16-bit wire encodes is written straight into the right neighbour's shared-memory slot
  // when one is free (the codec's `take` hands it that slot), else into the send pool.
  const encoded = codec.bytesPerElement !== 4;
  const sendMade = (elements: number, make: (take: (bytes: number) => Uint8Array) => Uint8Array) => {
    if (!encoded) ctx.send(right, make(take));
    else ctx.sendFill(right, elements * codec.bytesPerElement, (slot) => make(() => slot), take);
  };

  for (let j = 0; j < segs; j++) {
    const seg = segment(mod(r - 1, n), j);
    sendMade(seg.length, (t) => codec.encode(seg, t));
  }
  for (let k = 0; k < n - 1; k++) {
    const c = mod(r - 2 - k, n);
    const last = k === n - 2;
    for (let j = 0; j < segs; j++) {
      const payload = payloadOf(await ctx.recvMessage(left), scratch);
      const dst = segment(c, j);
      if (!last && spec.allGather && codec.reduceEncode) {
        // dst's partial sum is only forwarded: the all-gather overwrites this chunk.
        const reduceEncode = codec.reduceEncode;
        sendMade(dst.length, (t) => reduceEncode(payload, dst, elemOp, t));
        continue;
      }
      if (!last) {
        codec.reduceInto(payload, dst, elemOp);
        sendMade(dst.length, (t) => codec.encode(dst, t));
        continue;
      }
      const divisor = spec.op === 'mean' ? n : 1;
      if (spec.allGather) sendMade(dst.length, (t) => codec.reduceFinal(payload, dst, elemOp, divisor, t)!);
      else codec.reduceFinal(payload, dst, elemOp, divisor, null);
    }
  }
  if (spec.allGather) {
    for (let k = 0; k < n - 1; k++) {
      const c = mod(r - 1 - k, n);
      for (let j = 0; j < segs; j++) {
        const m = await ctx.recvMessage(left);
        const dst = segment(c, j);
        const forward = k < n - 2;
        let payload: Uint8Array;
        if (m.readInto && codec.bytesPerElement === 4) {
          // f32 from shared memory: straight into place, forwarded from there (final for this op).
          checkSize(m, dst.byteLength);
          payload = bytesOf(dst);
          m.readInto(payload);
        } else {
          // A forwarded payload is sent by reference: never the slot itself, which goes back to its sender.
          payload = !m.readInto ? m.payload : forward ? readOut(m, take) : payloadOf(m, scratch);
          codec.decodeInto(payload, dst);
        }
        // Forward the bytes we received (never re-encode): every rank ends bit-identical.
        if (forward) ctx.send(right, payload);
      }
    }
  }
  ctx.sendAck(left);
  await ctx.recvAck(right);
  spec.pool.reset();
}
