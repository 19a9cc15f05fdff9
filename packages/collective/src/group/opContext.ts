import { PeerError, type Message, type Transport } from '../transport/types.js';
import { CollectiveError } from './errors.js';
import { describeOp, Kind, readHeader, sameOp, writeHeader, type OpDesc } from './header.js';

/**
 * One collective call's view of the transport: stamps every message with the
 * op header and a per-peer index, checks both on receipt, and turns transport
 * failures into errors naming the op, its sequence number and the peer.
 */
export class OpContext {
  readonly rank: number;
  readonly size: number;
  private readonly expected: Buffer;
  private readonly sent: Uint32Array;
  private readonly received: Uint32Array;

  constructor(
    readonly transport: Transport,
    readonly desc: OpDesc,
    readonly timeoutMs: number,
  ) {
    this.rank = transport.rank;
    this.size = transport.size;
    this.expected = writeHeader(desc, Kind.Data, 0);
    this.sent = new Uint32Array(this.size);
    this.received = new Uint32Array(this.size);
  }

  get name(): string {
    return describeOp(this.desc);
  }

  send(peer: number, payload?: Uint8Array): void {
    this.transport.send(peer, writeHeader(this.desc, Kind.Data, this.sent[peer]!++), payload);
  }

  /**
   * Sends `bytes` bytes that `fill` writes: in place in a shared-memory slot where the transport
   * has one free, else in memory from `take` (which must stay untouched until received, as for send).
   */
  sendFill(
    peer: number,
    bytes: number,
    fill: (dst: Uint8Array) => void,
    take: (bytes: number) => Uint8Array,
  ): void {
    const header = writeHeader(this.desc, Kind.Data, this.sent[peer]!++);
    if (this.transport.sendInPlace?.(peer, header, bytes, fill)) return;
    const b = take(bytes);
    fill(b);
    this.transport.send(peer, header, b);
  }

  /** Next data payload from `peer`; throws a CollectiveError on timeout, failure or any header mismatch. */
  async recv(peer: number): Promise<Buffer> {
    return (await this.recvMessage(peer)).payload;
  }

  /** As {@link recv}, but hands back the message: its payload may be read straight into place (`readInto`). */
  async recvMessage(peer: number): Promise<Message> {
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
