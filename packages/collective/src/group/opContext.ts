import { PeerError, type Message, type Transport } from '../transport/types.js';
import { CODECS, type Wire, type WireCodec } from '../wire/codec.js';
import { bytesOf, type SendPool } from '../wire/views.js';
import { CollectiveError } from './errors.js';
import { describeOp, Kind, readHeader, sameOp, writeHeader, type OpDesc } from './header.js';

/** Memory an op's sends and receives borrow; the process group keeps it across ops. */
export interface OpMemory {
  /** Encoded sends and forwarded copies: reused only after the op's final acknowledgement. */
  pool: SendPool;
  /** Receive memory for a payload that is consumed before the next await. */
  scratch: (bytes: number) => Uint8Array;
}

/**
 * One collective call's view of the transport: stamps every message with the
 * op header and a per-peer index, checks both on receipt, and turns transport
 * failures into errors naming the op, its sequence number and the peer.
 *
 * Algorithms are schedules of its calls (`send`, `sendFrom`, `recv`, `recvInto`,
 * `recvReduceInto`, `forward`, acks), as Gloo's are of its pair's. Where a payload
 * lives — a socket buffer, a mapped shared-memory slot, a slot read by pread — is
 * decided here and in the transport, never in an algorithm.
 */
export class OpContext {
  readonly rank: number;
  readonly size: number;
  private readonly expected: Buffer;
  private readonly sent: Uint32Array;
  private readonly received: Uint32Array;
  /** How the op's values travel; null for byte ops (broadcast of bytes, all-gather, barrier). */
  private readonly codec: WireCodec | null;
  private readonly take: (bytes: number) => Uint8Array;

  constructor(
    readonly transport: Transport,
    readonly desc: OpDesc,
    readonly timeoutMs: number,
    private readonly memory: OpMemory,
  ) {
    this.rank = transport.rank;
    this.size = transport.size;
    this.codec = desc.dtype in CODECS ? CODECS[desc.dtype as Wire] : null;
    this.take = (bytes) => memory.pool.take(bytes);
    this.expected = writeHeader(desc, Kind.Data, 0);
    this.sent = new Uint32Array(this.size);
    this.received = new Uint32Array(this.size);
  }

  get name(): string {
    return describeOp(this.desc);
  }

  /** Sends `payload` by reference: it must stay untouched until the peer has provably received it. */
  send(peer: number, payload?: Uint8Array): void {
    this.transport.send(peer, this.header(peer), payload);
  }

  /**
   * Sends `elements` values that `make` produces from memory it gets from `take`. A 16-bit wire
   * writes them straight into the peer's shared-memory slot where the transport has one free,
   * else into the op's send pool; an f32 wire needs no memory and sends make's result (the
   * caller's data) by reference. Either way the bytes must stay untouched until received.
   */
  sendFrom(peer: number, elements: number, make: (take: (bytes: number) => Uint8Array) => Uint8Array): void {
    const codec = this.wire();
    const header = this.header(peer);
    if (codec.bytesPerElement !== 4) {
      const bytes = elements * codec.bytesPerElement;
      if (this.transport.sendInPlace?.(peer, header, bytes, (slot) => make(() => slot))) return;
    }
    this.transport.send(peer, header, make(this.take));
  }

  /** Next data payload from `peer`; throws a CollectiveError on timeout, failure or any header mismatch. */
  async recv(peer: number): Promise<Buffer> {
    return (await this.recvMessage(peer)).payload;
  }

  /**
   * Hands the next payload from `peer` to `reduce`, which must consume it before it returns: a
   * socket buffer, the mapped slot itself, or the slot read where the codec's kernel reads input.
   */
  async recvReduceInto(peer: number, reduce: (payload: Uint8Array) => void): Promise<void> {
    reduce(this.consumable(await this.recvMessage(peer)));
  }

  /** Receives `dst`'s values from `peer`: bytes copied (straight from a slot) or decoded from the wire. */
  async recvInto(peer: number, dst: Float32Array | Uint8Array): Promise<void> {
    const m = await this.recvMessage(peer);
    if (this.decodes(dst)) {
      this.wire().decodeInto(this.consumable(m), dst);
      return;
    }
    const b = bytesOf(dst);
    checkSize(m, b.byteLength);
    if (m.readInto) m.readInto(b);
    else b.set(m.payload);
  }

  /**
   * Receives `dst`'s values from `from` and sends the same bytes on to `to`, never re-encoded, so
   * every rank ends bit-identical. `acked`: the op ends with `to`'s acknowledgement, so what is
   * forwarded may be `dst` itself or the send pool; otherwise it is memory of its own. A
   * shared-memory slot is never forwarded: it goes back to its sender.
   */
  async forward(from: number, to: number, dst: Float32Array | Uint8Array, acked: boolean): Promise<void> {
    const m = await this.recvMessage(from);
    let out: Uint8Array;
    if (this.decodes(dst)) {
      out = m.readInto && acked ? readOut(m, this.take) : m.payload;
      this.wire().decodeInto(out, dst);
    } else {
      const b = bytesOf(dst);
      checkSize(m, b.byteLength);
      if (m.readInto && acked) {
        m.readInto(b);
        out = b;
      } else {
        out = m.payload;
        b.set(out);
      }
    }
    this.send(to, out);
  }

  /** Pre-sizes the send pool so one op's sends fit without reallocating. */
  reserveSends(bytes: number): void {
    this.memory.pool.reserve(bytes);
  }

  /** Returns the send pool's memory: only once every send from it is acknowledged. */
  releaseSends(): void {
    this.memory.pool.reset();
  }

  private header(peer: number): Buffer {
    return writeHeader(this.desc, Kind.Data, this.sent[peer]!++);
  }

  private wire(): WireCodec {
    if (!this.codec) throw new Error(`${this.name}: no wire codec for dtype ${this.desc.dtype}`);
    return this.codec;
  }

  /** Whether `dst` is filled by decoding; f32 and byte buffers travel as their own bytes (a copy). */
  private decodes(dst: Float32Array | Uint8Array): dst is Float32Array {
    return dst instanceof Float32Array && this.wire().bytesPerElement !== 4;
  }

  /** The payload's bytes, valid until the next await: in place where possible, else read out. */
  private consumable(m: Message): Uint8Array {
    if (!m.readInto) return m.payload;
    const area = (bytes: number) => this.codec?.inputArea?.(bytes) ?? this.memory.scratch(bytes);
    return m.view?.() ?? readOut(m, area);
  }

  /** Next data message from `peer`, its header checked. */
  private async recvMessage(peer: number): Promise<Message> {
    const m = await this.wait(peer);
    const index = this.received[peer]!++;
    if (m.header[0] === Kind.Data && sameOp(m.header, this.expected) && m.header.readUInt32LE(8) === index)
      return m;
    throw this.mismatch(peer, m.header, Kind.Data, index);
  }

  sendAck(peer: number): void {
    this.transport.send(peer, writeHeader(this.desc, Kind.Ack, 0));
  }

  async recvAck(peer: number): Promise<void> {
    const m = await this.wait(peer);
    if (m.header[0] === Kind.Ack && sameOp(m.header, this.expected)) return;
    throw this.mismatch(peer, m.header, Kind.Ack, 0);
  }

  private async wait(peer: number) {
    try {
      return await this.transport.recv(peer, this.timeoutMs);
    } catch (err) {
      if (err instanceof PeerError) {
        if (err.kind === 'timeout' && this.transport.diagnose) {
          const d = await this.transport.diagnose(peer, this.desc.seq);
          const msg = `${this.name} failed on rank ${this.rank}: ${err.message}; ${d.reason}`;
          throw new CollectiveError(msg, d.culprit);
        }
        throw new CollectiveError(`${this.name} failed on rank ${this.rank}: ${err.message}`, err.peer);
      }
      throw err;
    }
  }

  private mismatch(peer: number, header: Buffer, kind: Kind, index: number): CollectiveError {
    const got = readHeader(header);
    const mine = `this rank (${this.rank}) called ${this.name}`;
    if (!got)
      return new CollectiveError(`${this.name}: rank ${peer} sent an unreadable header; ${mine}`, peer);
    if (got.kind !== kind || got.index !== index || got.desc.seq !== this.desc.seq) {
      const theirs = `${got.kind === Kind.Ack ? 'ack' : 'data'} #${got.index}`;
      const ours = `${kind === Kind.Ack ? 'ack' : 'data'} #${index}`;
      return new CollectiveError(
        `${this.name}: protocol mismatch with rank ${peer}: received ${theirs} of ${describeOp(got.desc)}, expected ${ours}; ${mine}`,
        peer,
      );
    }
    return new CollectiveError(
      `collective mismatch: rank ${peer} called ${describeOp(got.desc)} while ${mine}` +
        ' (every rank must issue the same collectives, sizes and dtypes in the same order)',
      peer,
    );
  }
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
