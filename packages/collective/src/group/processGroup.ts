import { allGatherBytes, barrier } from '../algorithms/allGather.js';
import { broadcastBytes } from '../algorithms/broadcast.js';
import { chunkStart } from '../algorithms/chunks.js';
import { directAllReduce } from '../algorithms/directAllReduce.js';
import {
  hierarchicalAllReduce,
  hierarchicalFits,
  type NodeLayout,
} from '../algorithms/hierarchicalAllReduce.js';
import { ringAllReduce } from '../algorithms/ringAllReduce.js';
import type { Transport } from '../transport/types.js';
import { CODECS, type Wire } from '../wire/codec.js';
import { bytesOf, SendPool } from '../wire/views.js';
import { CollectiveError } from './errors.js';
import { describeOp, type DType, type OpDesc, type OpName, type ReduceOp } from './header.js';
import { OpContext, type OpMemory } from './opContext.js';

export type { Wire } from '../wire/codec.js';

export interface ReduceOptions {
  /** Default 'sum'. */
  op?: 'sum' | 'mean' | 'max';
  /** Element encoding on the network; reduction is always in f32. Default 'f32'. */
  wire?: Wire;
}

export interface ProcessGroupTuning {
  /** Every wait for a peer's next message gives up after this long. */
  timeoutMs: number;
  /** Buffers up to this many bytes take the one-hop direct path (default 32 KiB). */
  smallBytes?: number;
  /** Ring segment size in bytes of f32 data (default 1 MiB). */
  segmentBytes?: number;
  /** Which node each rank is on (default: all on one). */
  layout?: NodeLayout;
  /**
   * Large all-reduces: 'ring' (flat), 'hier' (within nodes, then across; needs a layout of more
   * than one node with the same number of ranks, more than one, on each), or 'auto' (default:
   * 'hier' where the layout fits, else 'ring').
   */
  algorithm?: 'auto' | 'ring' | 'hier';
  /** The hierarchical all-reduce's pipeline: at most this many pieces (default 16; 1 = phases one after another). */
  hierPieces?: number;
}

const SMALL_BYTES = 32 * 1024;
const SEGMENT_BYTES = 1 << 20;

/**
 * A group of ranks issuing collectives in the same order. Calls may be issued
 * back-to-back without awaiting: they run one after another in call order, so
 * a returned Promise is a handle to await later (the caller must not touch the
 * buffer until it resolves). The first failure breaks the group: every later
 * call rejects with it, as after a NCCL abort; the launcher restarts the run.
 */
export class ProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  /** The algorithm of large all-reduces: 'ring' (flat) or 'hier' (nodes × local ranks). */
  readonly algorithm: 'ring' | 'hier';
  private readonly layout: NodeLayout | null;
  private readonly hierPieces: number;
  private seq = 0;
  private tail: Promise<unknown> = Promise.resolve();
  private broken: Error | null = null;
  private closed = false;
  private scratchBuf = new Uint8Array(0);
  private readonly memory: OpMemory = {
    pool: new SendPool(),
    scratch: (bytes) => {
      if (this.scratchBuf.byteLength < bytes) this.scratchBuf = new Uint8Array(bytes);
      return this.scratchBuf.subarray(0, bytes);
    },
  };
  private readonly timeoutMs: number;
  private readonly smallBytes: number;
  private readonly segmentBytes: number;

  constructor(
    private readonly transport: Transport,
    tuning: ProcessGroupTuning,
    private readonly onClose: () => Promise<void> = async () => undefined,
  ) {
    this.rank = transport.rank;
    this.worldSize = transport.size;
    this.timeoutMs = tuning.timeoutMs;
    this.smallBytes = tuning.smallBytes ?? SMALL_BYTES;
    this.segmentBytes = tuning.segmentBytes ?? SEGMENT_BYTES;
    if (!(this.timeoutMs > 0)) throw new Error(`ProcessGroup: timeoutMs must be > 0, got ${this.timeoutMs}`);
    if (!(this.segmentBytes >= 64))
      throw new Error(`ProcessGroup: segmentBytes must be >= 64, got ${this.segmentBytes}`);
    const fits = tuning.layout !== undefined && hierarchicalFits(tuning.layout);
    if (tuning.algorithm === 'hier' && !fits) {
      const shape = tuning.layout ? tuning.layout.nodes.map((r) => r.length).join('+') : 'one node';
      throw new Error(
        `ProcessGroup: algorithm 'hier' needs more than one node with the same number (> 1) of ranks each; the layout is ${shape}`,
      );
    }
    this.algorithm = tuning.algorithm !== 'ring' && fits ? 'hier' : 'ring';
    this.layout = this.algorithm === 'hier' ? tuning.layout! : null;
    this.hierPieces = tuning.hierPieces ?? 16;
    if (!(Number.isInteger(this.hierPieces) && this.hierPieces >= 1))
      throw new Error(`ProcessGroup: hierPieces must be an integer >= 1, got ${this.hierPieces}`);
  }

  /** How each rank is reached from this one ('self' for this rank). */
  get peerEndpoints(): readonly string[] {
    return this.transport.endpoints ?? [];
  }

  /** Reduces `buf` across all ranks in place; every rank ends with identical values. */
  allReduce(buf: Float32Array, opts: ReduceOptions = {}): Promise<void> {
    const { op, wire } = this.checkReduce('allReduce', buf, opts);
    return this.enqueue('allReduce', wire, op, buf.length, 0, async (ctx) => {
      if (this.worldSize === 1) return;
      if (buf.byteLength <= this.smallBytes) return directAllReduce(ctx, buf, CODECS[wire], op);
      if (this.layout) {
        const { codec, segmentElements } = this.ringSpec(wire, op, true);
        return hierarchicalAllReduce(ctx, buf, {
          codec,
          op,
          segmentElements,
          layout: this.layout,
          maxPieces: this.hierPieces,
        });
      }
      await ringAllReduce(ctx, buf, this.ringSpec(wire, op, true));
    });
  }

  /**
   * Reduces `buf` so that this rank's chunk holds the result (chunk i is
   * [floor(i·n/N), floor((i+1)·n/N))); returns that chunk as a view of `buf`.
   * The rest of `buf` holds partial sums afterwards.
   */
  reduceScatter(buf: Float32Array, opts: ReduceOptions = {}): Promise<Float32Array> {
    const { op, wire } = this.checkReduce('reduceScatter', buf, opts);
    const mine = buf.subarray(
      chunkStart(buf.length, this.worldSize, this.rank),
      chunkStart(buf.length, this.worldSize, this.rank + 1),
    );
    return this.enqueue('reduceScatter', wire, op, buf.length, 0, async (ctx) => {
      if (this.worldSize > 1) await ringAllReduce(ctx, buf, this.ringSpec(wire, op, false));
      return mine;
    });
  }

  /** Copies root's `buf` into every rank's `buf` (same length and type everywhere). */
  broadcast(buf: Float32Array | Uint8Array, root: number): Promise<void> {
    if (!(buf instanceof Float32Array) && !(buf instanceof Uint8Array)) {
      return Promise.reject(new TypeError('broadcast: buf must be a Float32Array or Uint8Array'));
    }
    if (!Number.isInteger(root) || root < 0 || root >= this.worldSize) {
      return Promise.reject(
        new RangeError(`broadcast: root ${root} is not a rank of a group of ${this.worldSize}`),
      );
    }
    const dtype: DType = buf instanceof Float32Array ? 'f32' : 'u8';
    return this.enqueue('broadcast', dtype, 'none', buf.length, root, async (ctx) => {
      if (this.worldSize === 1) return;
      await broadcastBytes(ctx, bytesOf(buf), root, this.segmentBytes, this.smallBytes);
    });
  }

  /** Every rank's bytes, indexed by rank (lengths may differ). Meant for small data. */
  allGather(bytes: Uint8Array): Promise<Uint8Array[]> {
    if (!(bytes instanceof Uint8Array))
      return Promise.reject(new TypeError('allGather: bytes must be a Uint8Array'));
    return this.enqueue('allGather', 'u8', 'none', 0, 0, (ctx) => allGatherBytes(ctx, bytes));
  }

  /** Resolves once every rank has called barrier. */
  barrier(): Promise<void> {
    return this.enqueue('barrier', 'u8', 'none', 0, 0, (ctx) => barrier(ctx));
  }

  /** Waits for calls in flight, says goodbye to the peers and closes the sockets. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.tail.catch(() => undefined);
    await this.transport.close();
    await this.onClose();
  }

  private ringSpec(wire: Wire, op: 'sum' | 'mean' | 'max', allGather: boolean) {
    return {
      codec: CODECS[wire],
      op,
      segmentElements: Math.max(16, this.segmentBytes >> 2),
      allGather,
    };
  }

  private checkReduce(name: OpName, buf: Float32Array, opts: ReduceOptions) {
    if (!(buf instanceof Float32Array))
      throw new TypeError(`${name}: buf must be a Float32Array, got ${Object.prototype.toString.call(buf)}`);
    const op = opts.op ?? 'sum';
    const wire = opts.wire ?? 'f32';
    if (op !== 'sum' && op !== 'mean' && op !== 'max')
      throw new RangeError(`${name}: op must be sum, mean or max, got ${String(op)}`);
    if (!(wire in CODECS))
      throw new RangeError(`${name}: wire must be f32, f16 or bf16, got ${String(wire)}`);
    return { op, wire };
  }

  private enqueue<T>(
    op: OpName,
    dtype: DType,
    reduce: ReduceOp,
    count: number,
    aux: number,
    run: (ctx: OpContext) => Promise<T>,
  ): Promise<T> {
    if (this.closed) return Promise.reject(new Error(`${op}: process group of rank ${this.rank} is closed`));
    const desc: OpDesc = { op, seq: ++this.seq, dtype, reduce, count, aux };
    const result = this.tail.then(async () => {
      if (this.broken)
        throw new CollectiveError(
          `${describeOp(desc)} not started: the group failed earlier: ${this.broken.message}`,
          null,
        );
      try {
        this.transport.setActivity?.(desc.seq, describeOp(desc));
        const out = await run(new OpContext(this.transport, desc, this.timeoutMs, this.memory));
        this.transport.setActivity?.(desc.seq, `idle after ${describeOp(desc)}`);
        return out;
      } catch (err) {
        const e =
          err instanceof CollectiveError
            ? err
            : new CollectiveError(
                `${describeOp(desc)} failed on rank ${this.rank}: ${(err as Error).message}`,
                null,
              );
        if (!this.broken) {
          this.broken = e;
          this.transport.abort(e.message, e.silentRank ?? this.rank);
        }
        throw e;
      }
    });
    this.tail = result.catch(() => undefined);
    return result;
  }
}
