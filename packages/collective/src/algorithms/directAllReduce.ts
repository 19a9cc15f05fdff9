import type { OpContext } from '../group/opContext.js';
import { divideF32, type WireCodec } from '../wire/codec.js';
import { bytesOf, copyBytes } from '../wire/views.js';

/**
 * Latency-optimal all-reduce for small buffers (scalars, flags, loss values):
 * every rank sends its (copied) buffer to every peer and reduces all N
 * contributions in rank order, so one network hop and identical results
 * everywhere. The copy means no acknowledgement is needed.
 */
export async function directAllReduce(
  ctx: OpContext,
  buf: Float32Array,
  codec: WireCodec,
  op: 'sum' | 'mean' | 'max',
): Promise<void> {
  const n = ctx.size;
  const fresh = (bytes: number) => new Uint8Array(bytes);
  const mine = codec.wire === 'f32' ? copyBytes(bytesOf(buf)) : codec.encode(buf, fresh);
  for (let p = 0; p < n; p++) if (p !== ctx.rank) ctx.send(p, mine);
  const parts: Uint8Array[] = new Array<Uint8Array>(n);
  parts[ctx.rank] = mine;
  for (let p = 0; p < n; p++) if (p !== ctx.rank) parts[p] = await ctx.recv(p);
  const acc = new Float32Array(buf.length);
  codec.decodeInto(parts[0]!, acc);
  const elemOp = op === 'max' ? 'max' : 'sum';
  for (let p = 1; p < n; p++) codec.reduceInto(parts[p]!, acc, elemOp);
  if (op === 'mean') divideF32(acc, n);
  // Round the result to the wire format as the ring does, so an f16 sum past 65504 reads inf either way.
  if (codec.wire !== 'f32') codec.encodeRound(acc, fresh);
  buf.set(acc);
}
