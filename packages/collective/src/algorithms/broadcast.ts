import type { OpContext } from '../group/opContext.js';
import { copyBytes } from '../wire/views.js';
import { mod } from './chunks.js';

/**
 * Pipelined chain broadcast: root → root+1 → … → root−1 in segments; every
 * rank forwards the bytes it received. Only the root sends the caller's
 * memory by reference, so only the root waits for its successor's ack.
 * Small buffers are copied and sent to every rank directly (one hop).
 */
export async function broadcastBytes(
  ctx: OpContext,
  buf: Uint8Array,
  root: number,
  segmentBytes: number,
  smallBytes: number,
): Promise<void> {
  const n = ctx.size;
  const r = ctx.rank;
  if (buf.byteLength <= smallBytes) {
    if (r === root) {
      const copy = copyBytes(buf);
      for (let p = 0; p < n; p++) if (p !== r) ctx.send(p, copy);
    } else {
      const got = await ctx.recv(root);
      if (got.byteLength !== buf.byteLength)
        throw new Error(`broadcast: received ${got.byteLength} bytes, expected ${buf.byteLength}`);
      buf.set(got);
    }
    return;
  }
  const segs = Math.ceil(buf.byteLength / segmentBytes);
  const next = mod(r + 1, n);
  const prev = mod(r - 1, n);
  const lastInChain = next === root;
  if (r === root) {
    for (let j = 0; j < segs; j++) ctx.send(next, buf.subarray(j * segmentBytes, (j + 1) * segmentBytes));
    await ctx.recvAck(next);
    return;
  }
  for (let j = 0; j < segs; j++) {
    const got = await ctx.recv(prev);
    const off = j * segmentBytes;
    if (got.byteLength !== Math.min(segmentBytes, buf.byteLength - off)) {
      throw new Error(
        `broadcast: segment ${j} has ${got.byteLength} bytes, expected ${Math.min(segmentBytes, buf.byteLength - off)}`,
      );
    }
    buf.set(got, off);
    if (!lastInChain) ctx.send(next, got);
  }
  if (prev === root) ctx.sendAck(root);
}
