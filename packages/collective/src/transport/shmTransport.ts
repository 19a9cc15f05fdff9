import type { TransportKind } from './base.js';
import {
  SHM_CREDIT_MARK,
  SHM_DATA_MARK,
  SHM_REPLY_MARK,
  ShmReceiver,
  ShmSender,
  shmDirUsable,
  sweepStaleRings,
  type ShmOffer,
  type ShmOptions,
} from './shm.js';
import type { Message } from './types.js';

/** Writes one frame on the socket to a peer (header, optional payload). */
type WriteFrame = (header: Uint8Array, payload?: Uint8Array) => void;

/** What a frame from a peer was, for the socket transport that read it. */
export type ShmFrame =
  | { kind: 'data'; message: Message }
  /** A descriptor for a ring this rank never mapped. */
  | { kind: 'stray' }
  /** A credit or handshake answer, handled here. */
  | { kind: 'handled' }
  /** Not a shared-memory frame. */
  | null;

/**
 * Shared memory between same-host ranks, as a transport of its own over the socket one: each
 * sender creates a ring (ShmSender) and offers it in its socket hello; the receiver maps it
 * (ShmReceiver) and answers. From then on payloads lie in ring slots and the socket carries
 * only descriptors (so ordering is the socket's, and data and control frames never overtake
 * each other), credits back, and the peer's death (the socket closes). A ring that cannot be
 * made or mapped leaves that peer on the socket; `transport: 'shm'` fails instead.
 */
export class ShmTransport {
  private readonly out: (ShmSender | null)[] = [];
  private readonly in = new Map<number, ShmReceiver>();
  private on = false;
  /** Offers not answered yet, and who waits for them ({@link settled}). */
  private unanswered = 0;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly rank: number,
    private readonly kind: TransportKind,
    private readonly opts: ShmOptions | undefined,
    private readonly log: (line: string) => void,
    /** Called when a peer refused this rank's ring: it now receives on the socket. */
    private readonly onRefused: (peer: number) => void,
  ) {}

  /** Decides, once the group is known, whether shared memory is used (the reason logged once if not). */
  start(): void {
    const shm = this.opts;
    if (!shm || (this.kind !== 'auto' && this.kind !== 'shm')) return;
    const why = shmDirUsable(shm.dir);
    if (why === null) {
      sweepStaleRings(shm.dir);
      this.on = true;
      return;
    }
    if (this.kind === 'shm')
      throw new Error(`rank ${this.rank}: transport 'shm' requested but ${shm.dir} is unusable: ${why}`);
    this.log(`shared memory unavailable (${shm.dir}: ${why}); same-host peers use unix sockets`);
  }

  /**
   * The ring for sending to `peer` (reached at `endpoint`), or null: another host, shared memory
   * off, or a ring that cannot be made (logged). Returns the text to append to the hello.
   */
  connect(peer: number, endpoint: string, write: WriteFrame): string {
    let ring: ShmSender | null = null;
    if (this.on && endpoint.startsWith('ipc://')) {
      try {
        ring = new ShmSender(this.opts!, write, this.log);
      } catch (err) {
        if (this.kind === 'shm') throw err;
        this.log(
          `cannot create a shared-memory ring in ${this.opts!.dir} (${(err as Error).message}); using sockets`,
        );
      }
    }
    this.out[peer] = ring;
    if (!ring) return '';
    this.unanswered++;
    return `\n${JSON.stringify(ring.offer())}`;
  }

  /** 'shm://…' for a peer whose data goes through a ring, else null. */
  endpoint(peer: number): string | null {
    const ring = this.out[peer];
    return ring ? `shm://${ring.path}` : null;
  }

  /** Queues a data frame on the ring to `peer` (in order); false: that peer is on the socket alone. */
  send(peer: number, header: Uint8Array, payload?: Uint8Array): boolean {
    const ring = this.out[peer];
    if (!ring) return false;
    ring.send(header, payload);
    return true;
  }

  sendInPlace(peer: number, header: Uint8Array, bytes: number, fill: (dst: Uint8Array) => void): boolean {
    return this.out[peer]?.sendInPlace(header, bytes, fill) ?? false;
  }

  /** Maps (and unlinks) the ring a same-host sender offered, or tells it to stay on the socket. */
  accept(from: number, offer: ShmOffer, write: WriteFrame): void {
    let ok = false;
    try {
      if (!this.on) throw new Error('shared memory is off on this rank');
      this.in.get(from)?.close();
      this.in.set(from, ShmReceiver.open(offer, this.opts!.dir, write, this.opts!));
      ok = true;
    } catch (err) {
      this.log(
        `rank ${from}'s shared-memory ring refused (${(err as Error).message}); it sends on the socket`,
      );
    }
    write(Buffer.from([SHM_REPLY_MARK, ok ? 1 : 0]));
  }

  /** Reads a frame from `from` if it belongs to shared memory. */
  frame(from: number, header: Buffer): ShmFrame {
    const mark = header[0];
    if (mark === SHM_DATA_MARK) {
      const rx = this.in.get(from);
      return rx ? { kind: 'data', message: rx.message(header) } : { kind: 'stray' };
    }
    if (mark === SHM_CREDIT_MARK && header.length === 5) {
      this.out[from]?.onCredit(header.readUInt32LE(1));
      return { kind: 'handled' };
    }
    if (mark === SHM_REPLY_MARK && header.length === 2) {
      const ring = this.out[from];
      if (!ring || ring.answered) return { kind: 'handled' };
      ring.onReply(header[1] === 1);
      if (header[1] !== 1) this.onRefused(from);
      if (--this.unanswered === 0) this.wake();
      return { kind: 'handled' };
    }
    return null;
  }

  /**
   * Resolves once every same-host peer answered this rank's offer (until then data travels on
   * the socket), a connection broke ({@link wake}), or `timeoutMs` passed. Never rejects.
   */
  settled(timeoutMs: number): Promise<void> {
    if (this.unanswered === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Wakes {@link settled}'s waiters: a peer was lost, so an answer may never come. */
  wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  close(): void {
    for (const ring of this.out) ring?.close();
    for (const rx of this.in.values()) rx.close();
    this.in.clear();
  }
}
