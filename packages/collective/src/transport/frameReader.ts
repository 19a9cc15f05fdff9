import type { Socket } from 'node:net';

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

/**
 * Payload buffers that sockets read straight into, reused once their message is consumed, so a
 * steady stream of equal-sized segments touches the same warm, already-mapped pages (a fresh
 * megabyte costs 256 page faults on its first write).
 */
export class PayloadPool {
  private readonly free = new Map<number, Buffer[]>();
  private cached = 0;

  constructor(private readonly maxCachedBytes = 64 << 20) {}

  take(bytes: number): Buffer {
    const list = this.free.get(bytes);
    const b = list?.pop();
    if (b) {
      this.cached -= bytes;
      return b;
    }
    return Buffer.allocUnsafeSlow(bytes);
  }

  give(b: Buffer): void {
    if (this.cached + b.length > this.maxCachedBytes) return;
    let list = this.free.get(b.length);
    if (!list) this.free.set(b.length, (list = []));
    list.push(b);
    this.cached += b.length;
  }
}

/** Payloads up to this size are copied out of the staging buffer; larger ones are read in place. */
const STAGED_PAYLOAD_BYTES = 64 * 1024;

/**
 * The same frames as {@link FrameReader}, read the other way round: the socket asks
 * {@link target} where its next read should land and reports {@link filled}. Prefixes, headers
 * and small payloads land in one staging buffer and are copied out; a large payload gets a
 * buffer of its own from the pool and the kernel writes it there directly, so no byte of it is
 * copied in user space (Node's `onread`). `onFrame`'s `pooled` says the payload came from the
 * pool: whoever consumes it gives it back.
 */
export class PullFrameReader {
  private staging: Buffer;
  private start = 0;
  private end = 0;
  private header: Buffer | null = null;
  private payload: Buffer | null = null;
  private payloadGot = 0;

  constructor(
    private maxHeaderBytes: number,
    private readonly maxPayloadBytes: number,
    private readonly pool: PayloadPool,
    private readonly onFrame: (header: Buffer, payload: Buffer, pooled: boolean) => void,
  ) {
    this.staging = Buffer.allocUnsafeSlow(stagingBytes(maxHeaderBytes));
  }

  setMaxHeaderBytes(n: number): void {
    this.maxHeaderBytes = n;
    const need = stagingBytes(n);
    if (need > this.staging.length) {
      const s = Buffer.allocUnsafeSlow(need);
      this.staging.copy(s, 0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
      this.staging = s;
    }
  }

  /** Where the next read should write: the rest of a large payload, or the staging buffer's free tail. */
  target(): Uint8Array {
    if (this.payload) return this.payload.subarray(this.payloadGot);
    if (this.end === this.staging.length || (this.start > 0 && this.start === this.end)) {
      this.staging.copy(this.staging, 0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
    }
    return this.staging.subarray(this.end);
  }

  /** `n` bytes were written at {@link target}; throws on a frame that breaks the limits. */
  filled(n: number): void {
    if (this.payload) {
      this.payloadGot += n;
      if (this.payloadGot === this.payload.length) this.emitPooled();
      return;
    }
    this.end += n;
    this.parse();
  }

  private parse(): void {
    const s = this.staging;
    while (this.end - this.start >= 8) {
      const h = s.readUInt32LE(this.start);
      const p = s.readUInt32LE(this.start + 4);
      if (h === 0 || h > this.maxHeaderBytes)
        throw new Error(`frame header of ${h} bytes (limit ${this.maxHeaderBytes})`);
      if (p > this.maxPayloadBytes)
        throw new Error(`frame payload of ${p} bytes (limit ${this.maxPayloadBytes})`);
      const have = this.end - this.start - 8 - h;
      if (have < 0) return;
      const hs = this.start + 8;
      if (p <= STAGED_PAYLOAD_BYTES) {
        if (have < p) return;
        const header = Buffer.from(s.subarray(hs, hs + h));
        const payload = p === 0 ? EMPTY : Buffer.from(s.subarray(hs + h, hs + h + p));
        this.start = hs + h + p;
        this.onFrame(header, payload, false);
        continue;
      }
      this.header = Buffer.from(s.subarray(hs, hs + h));
      this.payload = this.pool.take(p);
      const k = Math.min(have, p);
      s.copy(this.payload, 0, hs + h, hs + h + k);
      this.payloadGot = k;
      this.start = hs + h + k;
      if (k < p) return;
      this.emitPooled();
    }
  }

  private emitPooled(): void {
    const header = this.header!;
    const payload = this.payload!;
    this.header = null;
    this.payload = null;
    this.onFrame(header, payload, true);
  }
}

function stagingBytes(maxHeaderBytes: number): number {
  return Math.max(256 * 1024, 8 + maxHeaderBytes + STAGED_PAYLOAD_BYTES);
}

/**
 * Makes an accepted socket read straight into `target()` (Node's `onread`, which `net.Server`
 * does not offer for the sockets it accepts: this sets the same fields a `net.Socket` built with
 * `onread` has). The server must pause new sockets (`pauseOnConnect`), so nothing was read the
 * ordinary way before. Returns false, touching nothing, when this Node lacks those fields.
 */
export function readStraightInto(
  sock: Socket,
  target: () => Uint8Array,
  filled: (n: number) => void,
): boolean {
  const syms = Object.getOwnPropertySymbols(sock);
  const find = (d: string) => syms.find((s) => s.description === d);
  const kBuffer = find('kBuffer');
  const kBufferCb = find('kBufferCb');
  const kBufferGen = find('kBufferGen');
  const handle = (sock as unknown as { _handle?: { useUserBuffer?: (b: Uint8Array) => void } })._handle;
  if (!kBuffer || !kBufferCb || !kBufferGen || typeof handle?.useUserBuffer !== 'function') return false;
  const s = sock as unknown as Record<symbol, unknown>;
  const first = target();
  s[kBuffer] = first;
  s[kBufferCb] = (n: number) => {
    filled(n);
  };
  s[kBufferGen] = target;
  handle.useUserBuffer(first);
  return true;
}
