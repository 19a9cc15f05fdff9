import type { OpContext } from '../group/opContext.js';
import { copyBytes } from '../wire/views.js';

/** Every rank's bytes (lengths may differ), indexed by rank. Direct exchange: meant for small data. */
export async function allGatherBytes(ctx: OpContext, bytes: Uint8Array): Promise<Uint8Array[]> {
  const copy = copyBytes(bytes);
  for (let p = 0; p < ctx.size; p++) if (p !== ctx.rank) ctx.send(p, copy);
  const out: Uint8Array[] = new Array<Uint8Array>(ctx.size);
  out[ctx.rank] = copy;
  for (let p = 0; p < ctx.size; p++) if (p !== ctx.rank) out[p] = await ctx.recv(p);
  return out;
}

/** Returns once every rank has entered the barrier. */
export async function barrier(ctx: OpContext): Promise<void> {
  for (let p = 0; p < ctx.size; p++) if (p !== ctx.rank) ctx.send(p);
  for (let p = 0; p < ctx.size; p++) if (p !== ctx.rank) await ctx.recv(p);
}
