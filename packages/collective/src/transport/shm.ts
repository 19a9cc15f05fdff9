import { randomBytes } from 'node:crypto';
import {
  accessSync,
  closeSync,
  constants,
  fstatSync,
  ftruncateSync,
  openSync,
  readdirSync,
  readSync,
  rmSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { nativeAddon, type CollectiveAddon } from '../native/addon.js';
import type { Message } from './types.js';

/**
 * Shared-memory channel for same-host peers: one file on tmpfs per directed
 * pair, a ring of `slots` × `slotBytes`. The sender copies a payload into the
 * next free slot and sends a 9-byte descriptor over the pair's socket (which
 * keeps ordering, control frames and failure detection); the receiver uses the
 * slot and returns a credit. Compared with a unix socket this saves the
 * kernel's second copy, the frame assembly copy and fresh pages on every receive.
 *
 * With the native addon both ends mmap the file: the sender's copy is a memcpy
 * into the shared pages, and the receiver reduces straight out of the slot
 * ({@link Message.view}) or copies it into place, with no system call per
 * payload. Without it the sender uses one `pwrite` and the receiver one
 * `pread` (straight into its destination when it can). The sender reserves
 * the whole ring at its first payload (posix_fallocate when mapping), so a
 * full tmpfs shows up there as an error and the pair falls back to its socket.
 *
 * Lifetime: the sender creates the file (mode 0600, random name) and names it
 * in its hello; the receiver opens it and unlinks it at once, so after the
 * handshake nothing is left on disk even if both are killed.
 */

/** Descriptor frame: mark, u32 slot, u32 length, then the message header. */
export const SHM_DATA_MARK = 0xc2;
/** Credit frame (receiver → sender): mark, u32 number of slots freed. */
export const SHM_CREDIT_MARK = 0xc3;
/** Handshake answer (receiver → sender): mark, u8 1 = mapped, 0 = refused (use the socket). */
export const SHM_REPLY_MARK = 0xc4;

export interface ShmOptions {
  /** tmpfs directory for the ring files (default /dev/shm). */
  dir: string;
  /** Slots per directed pair. */
  slots: number;
  /** Bytes per slot; larger payloads travel on the socket. */
  slotBytes: number;
  /** Payloads smaller than this travel on the socket (latency). */
  minBytes: number;
  /** Map the rings into memory (needs the native addon; default: whenever it loaded). */
  mmap?: boolean;
}

/** The addon when this ring should be mapped, else null (pwrite/pread). */
function mapper(opts: { mmap?: boolean }): CollectiveAddon | null {
  return opts.mmap === false ? null : nativeAddon();
}

/** What the sender announces in its hello. */
export interface ShmOffer {
  path: string;
  slots: number;
  slotBytes: number;
}

const NAME_RE = /^mtl-[0-9a-f]{24}\.shm$/;

/** Ring files older than this that were never sized are leftovers (see {@link sweepStaleRings}). */
export const STALE_RING_MS = 10 * 60_000;

/**
 * Removes ring files that a rank killed during the handshake left behind: a file is unlinked by
 * its receiver within the handshake, and sized only after it, so one that is still empty long
 * after it was made was never opened by anyone. Returns how many it removed; never throws.
 */
export function sweepStaleRings(dir: string, now = Date.now()): number {
  let removed = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    if (!NAME_RE.test(name)) continue;
    const path = join(dir, name);
    try {
      const st = statSync(path);
      if (st.isFile() && st.size === 0 && now - st.mtimeMs > STALE_RING_MS) {
        unlinkSync(path);
        removed++;
      }
    } catch {
      // gone meanwhile, or not ours to remove
    }
  }
  return removed;
}

/** Whether `dir` exists and is writable (else the transport falls back to sockets). */
export function shmDirUsable(dir: string): string | null {
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/** A queued send: by reference until written (the Transport contract allows it). */
interface Pending {
  header: Uint8Array;
  payload: Uint8Array | undefined;
}

/**
 * Sender side of one directed pair: `send` is handed every data frame for the
 * peer, in order; `frame` writes one socket frame (descriptor or inline).
 */
export class ShmSender {
  readonly path: string;
  private fd: number | null;
  /** The mapped ring (native addon), once reserved. */
  private mem: Uint8Array | null = null;
  /** The file has its full size (set at the first payload). */
  private sized = false;
  private ready = false;
  private disabled = false;
  /** The receiver answered the offer. */
  answered = false;
  private free: number;
  private next = 0;
  private readonly queue: Pending[] = [];
  private qHead = 0;

  constructor(
    readonly opts: ShmOptions,
    private readonly frame: (header: Uint8Array, payload?: Uint8Array) => void,
    private readonly log: (line: string) => void,
  ) {
    this.path = join(opts.dir, `mtl-${randomBytes(12).toString('hex')}.shm`);
    // O_EXCL: never adopt a file someone else prepared. Empty until its first payload (reserve).
    this.fd = openSync(this.path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o600);
    this.free = opts.slots;
  }

  offer(): ShmOffer {
    return { path: this.path, slots: this.opts.slots, slotBytes: this.opts.slotBytes };
  }

  /** The receiver mapped the file (or refused it: then everything stays on the socket). */
  onReply(ok: boolean): void {
    this.answered = true;
    if (ok) this.ready = true;
    else {
      this.disable('the peer could not open it');
      this.flush();
    }
  }

  /** Slots freed by the receiver: write what waited for them. */
  onCredit(n: number): void {
    this.free += n;
    this.flush();
  }

  get active(): boolean {
    return this.ready && !this.disabled;
  }

  send(header: Uint8Array, payload?: Uint8Array): void {
    if (this.qHead < this.queue.length) {
      this.queue.push({ header, payload });
      return;
    }
    if (!this.trySend(header, payload)) this.queue.push({ header, payload });
  }

  /**
   * Lets `fill` write a payload of `bytes` straight into the next slot of a mapped ring and sends
   * its descriptor. false (nothing done): no slot free now, sends queued before it, not mapped, or
   * a size the ring does not carry; the caller then sends from memory of its own.
   */
  sendInPlace(header: Uint8Array, bytes: number, fill: (dst: Uint8Array) => void): boolean {
    if (!this.carries(bytes) || this.qHead < this.queue.length || this.free === 0) return false;
    if (!this.reserved() || !this.mem) return false;
    const pos = this.next * this.opts.slotBytes;
    fill(this.mem.subarray(pos, pos + bytes));
    this.commit(header, bytes);
    return true;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    this.mem = null; // unmapped when collected
    this.disabled = true;
    this.queue.length = 0;
    this.qHead = 0;
    rmSync(this.path, { force: true });
  }

  /** false: needs a slot and none is free. */
  private trySend(header: Uint8Array, payload: Uint8Array | undefined): boolean {
    const n = payload?.byteLength ?? 0;
    if (this.carries(n) && this.free === 0) return false;
    if (!this.carries(n) || !this.reserved()) {
      this.frame(header, payload);
      return true;
    }
    const pos = this.next * this.opts.slotBytes;
    try {
      if (this.mem) this.mem.set(payload!, pos);
      else {
        let off = 0;
        while (off < n) off += writeSync(this.fd!, payload!, off, n - off, pos + off);
      }
    } catch (err) {
      // ENOSPC (a full /dev/shm: Docker's default is 64 MiB) or similar: stay on the socket.
      this.disable(`cannot write it (${(err as Error).message})`);
      this.frame(header, payload);
      return true;
    }
    this.commit(header, n);
    return true;
  }

  /** The next slot holds `n` payload bytes: take it and send its descriptor. */
  private commit(header: Uint8Array, n: number): void {
    const slot = this.next;
    this.free--;
    this.next = (slot + 1) % this.opts.slots;
    const d = Buffer.allocUnsafe(9 + header.byteLength);
    d[0] = SHM_DATA_MARK;
    d.writeUInt32LE(slot, 1);
    d.writeUInt32LE(n, 5);
    d.set(header, 9);
    this.frame(d);
  }

  /** Whether a payload of `n` bytes goes through the ring (else on the socket). */
  private carries(n: number): boolean {
    return this.active && n > 0 && n >= this.opts.minBytes && n <= this.opts.slotBytes;
  }

  /**
   * Gives the file its full size before the first descriptor (so the receiver can map it) and,
   * with the addon, reserves its pages and maps it; rings that never carry a payload stay empty.
   * false: that failed (a full tmpfs), the ring is disabled and the peer gets the socket.
   */
  private reserved(): boolean {
    if (this.sized) return true;
    const bytes = this.opts.slots * this.opts.slotBytes;
    try {
      const addon = mapper(this.opts);
      if (addon) this.mem = new Uint8Array(addon.map(this.fd!, bytes, true));
      else ftruncateSync(this.fd!, bytes);
    } catch (err) {
      this.disable(`cannot write it (${(err as Error).message})`);
      return false;
    }
    this.sized = true;
    return true;
  }

  private flush(): void {
    while (this.qHead < this.queue.length) {
      const p = this.queue[this.qHead]!;
      if (!this.trySend(p.header, p.payload)) return;
      this.queue[this.qHead++] = undefined as unknown as Pending; // drop the reference at once
    }
    this.queue.length = 0;
    this.qHead = 0;
  }

  private disable(why: string): void {
    if (this.disabled) return;
    this.disabled = true;
    this.log(`shared memory ${this.path}: ${why}; using the socket for this peer`);
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    this.mem = null;
    rmSync(this.path, { force: true });
  }
}

/**
 * Receiver side of one directed pair: opens (and unlinks) the sender's file,
 * turns descriptors into lazy messages whose payload is read on demand.
 */
export class ShmReceiver {
  private fd: number | null;
  private pendingCredits = 0;
  private creditScheduled = false;
  /** The mapped ring (native addon), mapped at the first descriptor; null: pread. */
  private mem: Uint8Array | null = null;
  private mapTried = false;

  private constructor(
    fd: number,
    private readonly slots: number,
    private readonly slotBytes: number,
    private readonly sendCredit: (frame: Buffer) => void,
    private readonly addon: CollectiveAddon | null,
  ) {
    this.fd = fd;
  }

  /** Opens the offered file; throws with the reason when it cannot (the caller refuses the offer). */
  static open(
    offer: ShmOffer,
    dir: string,
    sendCredit: (frame: Buffer) => void,
    opts: { mmap?: boolean } = {},
  ): ShmReceiver {
    const { path, slots, slotBytes } = offer;
    if (typeof path !== 'string' || !NAME_RE.test(basename(path)))
      throw new Error(`refusing shared-memory file ${JSON.stringify(path)} (not a ring file name)`);
    if (join(dir, basename(path)) !== path)
      throw new Error(`refusing shared-memory file ${path}: not in this rank's shm directory ${dir}`);
    if (!Number.isInteger(slots) || slots < 1 || !Number.isInteger(slotBytes) || slotBytes < 1)
      throw new Error(`bad shared-memory geometry ${slots} × ${slotBytes}`);
    const fd = openSync(path, constants.O_RDONLY);
    try {
      unlinkSync(path);
    } catch {
      // The sender already removed it (it gave up on us); the open fd still works.
    }
    return new ShmReceiver(fd, slots, slotBytes, sendCredit, mapper(opts));
  }

  /** The mapped ring, mapping it on first use (the sender sized the file before its first descriptor). */
  private mapped(): Uint8Array | null {
    if (this.mapTried || !this.addon || this.fd === null) return this.mem;
    this.mapTried = true;
    const bytes = this.slots * this.slotBytes;
    // A file shorter than its geometry would fault on access, and a runtime may refuse external
    // memory: pread then (it reports a shortfall itself).
    try {
      if (fstatSync(this.fd).size >= bytes) this.mem = new Uint8Array(this.addon.map(this.fd, bytes, false));
    } catch {
      this.mem = null;
    }
    return this.mem;
  }

  /** A received descriptor frame → a message whose payload is read from the slot on first use. */
  message(frame: Buffer): Message {
    if (frame.length < 9) throw new Error('short shared-memory descriptor');
    const slot = frame.readUInt32LE(1);
    const len = frame.readUInt32LE(5);
    if (slot >= this.slots || len > this.slotBytes)
      throw new Error(`shared-memory descriptor out of range (slot ${slot}, ${len} bytes)`);
    return new ShmMessage(frame.subarray(9), this, slot * this.slotBytes, len);
  }

  read(dst: Uint8Array, pos: number): void {
    if (this.fd === null) throw new Error('shared-memory channel is closed');
    const n = dst.byteLength;
    const mem = this.mapped();
    if (mem) dst.set(mem.subarray(pos, pos + n));
    else {
      let off = 0;
      while (off < n) {
        const k = readSync(this.fd, dst, off, n - off, pos + off);
        if (k === 0) throw new Error('shared-memory file is shorter than the descriptor says');
        off += k;
      }
    }
    this.consumed();
  }

  /**
   * The slot itself (mapped rings only, else null): valid until the current synchronous run of
   * code ends, when the slot's credit goes back to the sender.
   */
  view(pos: number, n: number): Uint8Array | null {
    if (this.fd === null) throw new Error('shared-memory channel is closed');
    const mem = this.mapped();
    if (!mem) return null;
    this.consumed();
    return mem.subarray(pos, pos + n);
  }

  /** One slot used up: its credit goes back with the others of this synchronous run. */
  private consumed(): void {
    this.pendingCredits++;
    if (!this.creditScheduled) {
      // Batch the credits of one synchronous run of reads into one frame.
      this.creditScheduled = true;
      queueMicrotask(() => {
        this.creditScheduled = false;
        const f = Buffer.allocUnsafe(5);
        f[0] = SHM_CREDIT_MARK;
        f.writeUInt32LE(this.pendingCredits, 1);
        this.pendingCredits = 0;
        if (this.fd !== null) this.sendCredit(f);
      });
    }
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    this.mem = null;
  }
}

const EMPTY = Buffer.alloc(0);

/** A message whose payload still sits in a shared-memory slot. */
class ShmMessage implements Message {
  private consumed = false;
  private materialized: Buffer | null = null;

  constructor(
    readonly header: Buffer,
    private readonly rx: ShmReceiver,
    private readonly pos: number,
    readonly byteLength: number,
  ) {}

  get payload(): Buffer {
    if (this.materialized) return this.materialized;
    const b = this.byteLength === 0 ? EMPTY : Buffer.allocUnsafeSlow(this.byteLength);
    this.readInto(b);
    this.materialized = b;
    return b;
  }

  readInto(dst: Uint8Array): void {
    if (this.consumed) throw new Error('shared-memory payload read twice');
    if (dst.byteLength !== this.byteLength)
      throw new Error(`payload of ${this.byteLength} bytes read into ${dst.byteLength} bytes`);
    this.consumed = true;
    this.rx.read(dst, this.pos);
  }

  view(): Uint8Array | null {
    if (this.consumed) throw new Error('shared-memory payload read twice');
    const v = this.rx.view(this.pos, this.byteLength);
    if (v) this.consumed = true;
    return v;
  }
}
