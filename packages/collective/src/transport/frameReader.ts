/**
 * Splits a byte stream into frames: u32 header length, u32 payload length (both
 * little-endian), header, payload. A payload that lies whole inside one chunk is
 * a view of it (Node gives every read a fresh chunk); otherwise it is assembled
 * into one new buffer.
 */
export class FrameReader {
  private readonly prefix = Buffer.alloc(8);
  private prefixGot = 0;
  private header: Buffer | null = null;
  private headerGot = 0;
  private payload: Buffer | null = null;
  private payloadGot = 0;

  constructor(
    private maxHeaderBytes: number,
    private readonly maxPayloadBytes: number,
    private readonly onFrame: (header: Buffer, payload: Buffer) => void,
  ) {}

  /** Raises the header limit once the peer is authenticated. */
  setMaxHeaderBytes(n: number): void {
    this.maxHeaderBytes = n;
  }

  /** Consumes a chunk; throws on a frame that breaks the limits (the caller drops the connection). */
  push(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      if (this.header === null) {
        const k = Math.min(8 - this.prefixGot, chunk.length - off);
        chunk.copy(this.prefix, this.prefixGot, off, off + k);
        this.prefixGot += k;
        off += k;
        if (this.prefixGot < 8) return;
        const h = this.prefix.readUInt32LE(0);
        const p = this.prefix.readUInt32LE(4);
        if (h === 0 || h > this.maxHeaderBytes)
          throw new Error(`frame header of ${h} bytes (limit ${this.maxHeaderBytes})`);
        if (p > this.maxPayloadBytes)
          throw new Error(`frame payload of ${p} bytes (limit ${this.maxPayloadBytes})`);
        this.prefixGot = 0;
        this.header = Buffer.allocUnsafe(h);
        this.headerGot = 0;
        this.payload = p === 0 ? EMPTY : null;
        this.payloadGot = p;
        continue;
      }
      if (this.headerGot < this.header.length) {
        const k = Math.min(this.header.length - this.headerGot, chunk.length - off);
        chunk.copy(this.header, this.headerGot, off, off + k);
        this.headerGot += k;
        off += k;
        if (this.headerGot < this.header.length) return;
      }
      if (this.payload === null) {
        const need = this.payloadGot; // total length stashed here until allocation
        if (chunk.length - off >= need) {
          this.emit(chunk.subarray(off, off + need));
          off += need;
          continue;
        }
        this.payload = Buffer.allocUnsafeSlow(need);
        this.payloadGot = 0;
      }
      if (this.payload !== EMPTY) {
        const k = Math.min(this.payload.length - this.payloadGot, chunk.length - off);
        chunk.copy(this.payload, this.payloadGot, off, off + k);
        this.payloadGot += k;
        off += k;
        if (this.payloadGot < this.payload.length) return;
      }
      this.emit(this.payload);
    }
  }

  private emit(payload: Buffer): void {
    const header = this.header!;
    this.header = null;
    this.payload = null;
    this.onFrame(header, payload);
  }
}

/** The 8-byte prefix of a frame. */
export function framePrefix(headerBytes: number, payloadBytes: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeUInt32LE(headerBytes, 0);
  b.writeUInt32LE(payloadBytes, 4);
  return b;
}

const EMPTY = Buffer.alloc(0);
