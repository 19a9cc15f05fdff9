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
    } else await ctx.recvInto(root, buf);
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
  // Only the root is acknowledged, so what the others forward is a copy of their own, never buf.
  for (let j = 0; j < segs; j++) {
    const dst = buf.subarray(j * segmentBytes, (j + 1) * segmentBytes);
    if (lastInChain) await ctx.recvInto(prev, dst);
    else await ctx.forward(prev, next, dst, false);
  }
  if (prev === root) ctx.sendAck(root);
}
