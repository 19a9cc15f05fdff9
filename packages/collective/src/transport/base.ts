import { Packr } from 'msgpackr';
import { PeerError, type Diagnosis, type Message, type Transport } from './types.js';

/** A send found no open connection to the peer: the peer is lost, not the send. */
export class ConnectionGone extends Error {
  override name = 'ConnectionGone';
}

/** First byte of a transport control frame; group headers never start with it. */
export const CONTROL_MARK = 0xc0;
const MAX_CONTROL_BYTES = 64 * 1024;
/** How long a diagnosis waits for probe answers. */
const PROBE_MS = 500;
const controlPackr = new Packr({ useRecords: false });

/** 'auto': shared memory (engine net) or ipc for same-host peers, tcp otherwise. */
export type TransportKind = 'auto' | 'tcp' | 'ipc' | 'shm';

/** What a rank publishes about itself through the store. */
export interface PeerAddress {
  rank: number;
  host: string;
  pid: number;
  /** Secret id this rank presents to peers; unknown ids are refused (only members learn them, via the store). */
  id: string;
  tcp: string;
  ipc: string | null;
  curvePublicKey: string | null;
}

/** What a rank reports when probed after someone's timeout. */
interface PeerState {
  seq: number;
  op: string;
  waitingFor: number | null;
}

interface Waiter {
  resolve: (m: Message) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

class PeerQueue {
  items: Message[] = [];
  head = 0;
  waiter: Waiter | null = null;
  push(m: Message): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      clearTimeout(w.timer);
      w.resolve(m);
    } else this.items.push(m);
  }
  shift(): Message | undefined {
    if (this.head >= this.items.length) return undefined;
    const m = this.items[this.head];
    // Drop the reference at once: a consumed message may hold megabytes of payload.
    this.items[this.head++] = undefined as unknown as Message;
    if (this.head === this.items.length) {
      this.items.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return m;
  }
}

/**
 * What every socket transport shares: per-peer FIFO queues with timed waits,
 * and the control frames (bye, abort, probe/state) that make a failure on one
 * rank reach every rank at once and let a stalled rank name the real culprit.
 */
export abstract class PeerTransport implements Transport {
  readonly rank: number;
  readonly size: number;
  protected readonly idToRank = new Map<string, number>();
  protected readonly gone = new Set<number>();
  protected closing = false;
  protected chosen: string[] = [];
  private readonly queues: PeerQueue[] = [];
  private fatal: PeerError | null = null;
  private activity = { seq: 0, op: 'nothing' };
  /** The peer whose message this rank gave up waiting for (reported while it diagnoses). */
  private stalledOn: number | null = null;
  private probeId = 0;
  private readonly probeReplies = new Map<number, Map<number, PeerState>>();

  constructor(
    rank: number,
    size: number,
    protected readonly onDrop?: (reason: string) => void,
  ) {
    this.rank = rank;
    this.size = size;
    for (let p = 0; p < size; p++) this.queues.push(new PeerQueue());
  }

  /** Hands a frame to the network; may keep `payload` by reference until it is written. */
  protected abstract sendFrame(peer: number, header: Uint8Array, payload?: Uint8Array): Promise<void>;

  get endpoints(): readonly string[] {
    return this.chosen;
  }

  send(peer: number, header: Uint8Array, payload?: Uint8Array): void {
    if (peer === this.rank || peer < 0 || peer >= this.size)
      throw new Error(`rank ${this.rank}: cannot send to rank ${peer}`);
    this.sendFrame(peer, header, payload).catch((err: Error) => {
      // A peer whose connection is already gone is lost, however the loss was first noticed.
      if (!this.closing)
        this.peerLost(peer, err instanceof ConnectionGone ? undefined : `send failed: ${err.message}`);
    });
  }

  recv(peer: number, timeoutMs: number): Promise<Message> {
    const q = this.queues[peer]!;
    const m = q.shift();
    if (m) return Promise.resolve(m);
    const failure = this.fatal ?? (this.gone.has(peer) ? this.goneError(peer) : null);
    if (failure) return Promise.reject(failure);
    if (q.waiter) return Promise.reject(new Error(`rank ${this.rank}: concurrent recv from rank ${peer}`));
    return new Promise<Message>((resolve, reject) => {
      const timer = setTimeout(() => {
        q.waiter = null;
        this.stalledOn = peer;
        reject(new PeerError(peer, 'timeout', `no message from rank ${peer} within ${timeoutMs} ms`));
      }, timeoutMs);
      q.waiter = { resolve, reject, timer };
    });
  }

  setActivity(seq: number, op: string): void {
    this.activity = { seq, op };
    this.stalledOn = null;
  }

  async diagnose(peer: number, seq: number): Promise<Diagnosis> {
    const id = ++this.probeId;
    const replies = new Map<number, PeerState>();
    this.probeReplies.set(id, replies);
    this.broadcastControl({ t: 'probe', id });
    const deadline = Date.now() + PROBE_MS;
    while (replies.size < this.size - 1 - this.gone.size && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    this.probeReplies.delete(id);
    const seen = new Set<number>([this.rank]);
    let at = peer;
    for (;;) {
      const state = replies.get(at);
      if (!state) return { culprit: at, reason: `rank ${at} does not respond (frozen, dead or unreachable)` };
      if (state.seq < seq)
        return {
          culprit: at,
          reason: `rank ${at} has not called collective seq ${seq} (it is at seq ${state.seq}, ${state.op})`,
        };
      if (state.seq > seq) {
        return {
          culprit: at,
          reason: `rank ${at} is already at seq ${state.seq} (${state.op}): collectives were issued in a different order`,
        };
      }
      if (state.waitingFor === null && state.op.startsWith('idle')) {
        return {
          culprit: at,
          reason: `rank ${at} finished seq ${seq} and has issued nothing since (${state.op})`,
        };
      }
      if (state.waitingFor === null)
        return {
          culprit: at,
          reason: `rank ${at} is in seq ${seq} but not waiting on the network (busy or stalled)`,
        };
      if (seen.has(state.waitingFor))
        return { culprit: at, reason: `ranks wait on each other in a cycle through rank ${at}` };
      seen.add(at);
      at = state.waitingFor;
    }
  }

  abort(reason: string, culprit = this.rank): void {
    this.broadcastControl({ t: 'abort', reason, culprit });
  }

  /** Says goodbye to every peer; subclasses then close their sockets. */
  protected async sayBye(): Promise<void> {
    const bye = this.control({ t: 'bye' });
    await Promise.all(
      Array.from({ length: this.size }, (_, p) =>
        p === this.rank || this.gone.has(p) ? undefined : this.sendFrame(p, bye).catch(() => undefined),
      ),
    );
    this.failAll(new PeerError(this.rank, 'closed', `rank ${this.rank}: process group closed`));
  }

  abstract close(): Promise<void>;

  protected control(body: Record<string, unknown>): Buffer {
    const packed = controlPackr.pack(body);
    const frame = Buffer.allocUnsafe(packed.length + 1);
    frame[0] = CONTROL_MARK;
    packed.copy(frame, 1);
    return frame;
  }

  private broadcastControl(body: Record<string, unknown>): void {
    const frame = this.control(body);
    for (let p = 0; p < this.size; p++)
      if (p !== this.rank && !this.gone.has(p)) this.sendFrame(p, frame).catch(() => undefined);
  }

  private goneError(peer: number): PeerError {
    return new PeerError(peer, 'closed', `rank ${peer} has closed its process group`);
  }

  /** A peer's connection broke without a goodbye: the group cannot continue. */
  protected peerLost(peer: number, detail = 'connection lost (process died or froze)'): void {
    if (this.closing || this.gone.has(peer) || this.fatal) return;
    this.failAll(new PeerError(peer, 'disconnected', `rank ${peer} ${detail}`));
  }

  private failAll(err: PeerError): void {
    if (!this.fatal) this.fatal = err;
    for (const q of this.queues) {
      const w = q.waiter;
      if (w) {
        q.waiter = null;
        clearTimeout(w.timer);
        w.reject(this.fatal);
      }
    }
  }

  /** Routes one received frame from a known peer. */
  protected deliver(from: number, header: Buffer, payload: Buffer): void {
    if (header[0] === CONTROL_MARK) this.handleControl(from, header);
    else this.queues[from]!.push({ header, payload });
  }

  /** Queues a data message built by a subclass (e.g. one whose payload is still in shared memory). */
  protected deliverMessage(from: number, m: Message): void {
    this.queues[from]!.push(m);
  }

  private handleControl(from: number, frame: Buffer): void {
    let body: {
      t?: unknown;
      reason?: unknown;
      culprit?: unknown;
      id?: unknown;
      seq?: unknown;
      op?: unknown;
      waitingFor?: unknown;
    };
    try {
      if (frame.length > MAX_CONTROL_BYTES) throw new Error('too large');
      body = controlPackr.unpack(frame.subarray(1)) as typeof body;
      if (typeof body !== 'object' || body === null) throw new Error('not a map');
    } catch {
      this.onDrop?.(`rank ${this.rank}: dropped an undecodable control message from rank ${from}`);
      return;
    }
    if (body.t === 'bye') {
      this.gone.add(from);
      const q = this.queues[from]!;
      const w = q.waiter;
      if (w) {
        q.waiter = null;
        clearTimeout(w.timer);
        w.reject(this.goneError(from));
      }
    } else if (body.t === 'probe') {
      const waiting = this.queues.findIndex((q) => q.waiter !== null);
      const waitingFor = waiting >= 0 ? waiting : this.stalledOn;
      this.sendFrame(from, this.control({ t: 'state', id: body.id, ...this.activity, waitingFor })).catch(
        () => undefined,
      );
    } else if (body.t === 'state') {
      const replies = typeof body.id === 'number' ? this.probeReplies.get(body.id) : undefined;
      if (replies && typeof body.seq === 'number') {
        replies.set(from, {
          seq: body.seq,
          op: String(body.op),
          waitingFor: typeof body.waitingFor === 'number' ? body.waitingFor : null,
        });
      }
    } else if (body.t === 'abort') {
      const culprit = typeof body.culprit === 'number' ? body.culprit : from;
      this.failAll(new PeerError(culprit, 'aborted', `${String(body.reason)} (reported by rank ${from})`));
    }
  }
}

/** ipc for a same-host peer (unless 'tcp' is forced), tcp otherwise; 'ipc' and 'shm' insist. */
export function chooseEndpoint(
  rank: number,
  self: PeerAddress,
  peer: PeerAddress,
  kind: TransportKind,
): string {
  const sameHost = peer.host === self.host && peer.ipc !== null;
  if ((kind === 'ipc' || kind === 'shm') && !sameHost)
    throw new Error(
      `rank ${rank}: transport '${kind}' requested but rank ${peer.rank} is on host ${peer.host}`,
    );
  return kind !== 'tcp' && sameHost ? peer.ipc! : peer.tcp;
}
