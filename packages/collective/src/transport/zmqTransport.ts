import { randomBytes } from 'node:crypto';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Dealer, Router, curveKeyPair } from 'zeromq';
import { Packr } from 'msgpackr';
import { SerialSender } from '../zmq/serialSender.js';
import { PeerError, type Diagnosis, type Message, type Transport } from './types.js';

/** First byte of a transport control frame; group headers never start with it. */
export const CONTROL_MARK = 0xc0;
const MAX_CONTROL_BYTES = 64 * 1024;
const MAX_EARLY_MESSAGES = 10_000;
const controlPackr = new Packr({ useRecords: false });

export type TransportKind = 'auto' | 'tcp' | 'ipc';

/** What a rank publishes about itself through the store. */
export interface PeerAddress {
  rank: number;
  host: string;
  pid: number;
  /** Routing id this rank's dealers present; unknown ids are dropped (a capability only members learn). */
  id: string;
  tcp: string;
  ipc: string | null;
  curvePublicKey: string | null;
}

export interface ZmqTransportOptions {
  rank: number;
  size: number;
  /** Interface address to bind (never all interfaces unless you pass 0.0.0.0). */
  bindHost: string;
  transport?: TransportKind;
  /** Encrypt and authenticate with ZeroMQ CURVE. */
  curve?: boolean;
  /** ZMTP heartbeat: a peer whose process froze is disconnected after heartbeatTimeoutMs. */
  heartbeatIntervalMs?: number;
  heartbeatTimeoutMs?: number;
  onDrop?: (reason: string) => void;
}

/** What a rank reports when probed after someone's timeout. */
interface PeerState {
  seq: number;
  op: string;
  waitingFor: number | null;
}

/** How long a diagnosis waits for probe answers. */
const PROBE_MS = 500;

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
 * Point-to-point transport on ZeroMQ: every rank binds one Router inbox (tcp on
 * the node's address, plus ipc for same-host peers) and holds one Dealer per
 * peer. Messages from a peer arrive in send order; control frames (abort, bye)
 * are handled here so that a failure anywhere reaches every rank at once.
 */
export class ZmqTransport implements Transport {
  readonly rank: number;
  readonly size: number;
  readonly self: PeerAddress;
  private readonly inbox: Router;
  private readonly curve: { publicKey: string; secretKey: string } | null;
  private readonly dealers: (Dealer | null)[] = [];
  private readonly senders: (SerialSender | null)[] = [];
  private readonly queues: PeerQueue[] = [];
  private readonly idToRank = new Map<string, number>();
  private early: Buffer[][] | null = [];
  private readonly gone = new Set<number>();
  private fatal: PeerError | null = null;
  private closing = false;
  private readonly loop: Promise<void>;
  private chosen: string[] = [];
  private activity = { seq: 0, op: 'nothing' };
  /** The peer whose message this rank gave up waiting for (reported while it diagnoses). */
  private stalledOn: number | null = null;
  private probeId = 0;
  private readonly probeReplies = new Map<number, Map<number, PeerState>>();

  private constructor(
    private readonly opts: ZmqTransportOptions,
    inbox: Router,
    self: PeerAddress,
    curve: { publicKey: string; secretKey: string } | null,
  ) {
    this.rank = opts.rank;
    this.size = opts.size;
    this.inbox = inbox;
    this.self = self;
    this.curve = curve;
    for (let p = 0; p < opts.size; p++) this.queues.push(new PeerQueue());
    this.loop = this.receiveLoop();
  }

  /** Binds the inbox; publish `transport.self` and then call {@link connect} with everyone's address. */
  static async bind(opts: ZmqTransportOptions): Promise<ZmqTransport> {
    const curve = opts.curve ? curveKeyPair() : null;
    const inbox = new Router({
      linger: 0,
      receiveHighWaterMark: 0,
      sendHighWaterMark: 0,
      ...(curve ? { curveServer: true, curveSecretKey: curve.secretKey } : {}),
    });
    const id = randomBytes(12).toString('hex');
    const host = opts.bindHost.includes(':') ? `[${opts.bindHost}]` : opts.bindHost;
    if (host !== opts.bindHost) inbox.ipv6 = true;
    try {
      await inbox.bind(`tcp://${host}:*`);
    } catch (err) {
      inbox.close();
      throw new Error(
        `rank ${opts.rank}: cannot bind the ring inbox on ${opts.bindHost}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    const tcp = inbox.lastEndpoint!;
    let ipc: string | null = null;
    if ((opts.transport ?? 'auto') !== 'tcp') {
      const path = join(tmpdir(), `mtl-${id}.sock`);
      try {
        await inbox.bind(`ipc://${path}`);
        ipc = `ipc://${path}`;
      } catch {
        if (opts.transport === 'ipc') {
          inbox.close();
          throw new Error(`rank ${opts.rank}: cannot bind ipc://${path} (transport 'ipc' was requested)`);
        }
      }
    }
    const self: PeerAddress = {
      rank: opts.rank,
      host: hostname(),
      pid: process.pid,
      id,
      tcp,
      ipc,
      curvePublicKey: curve?.publicKey ?? null,
    };
    return new ZmqTransport(opts, inbox, self, curve);
  }

  /** Endpoint used for each peer (for logs and tests). */
  get endpoints(): readonly string[] {
    return this.chosen;
  }

  /** Connects one Dealer to every peer, choosing ipc for same-host peers unless told otherwise. */
  connect(peers: readonly PeerAddress[]): void {
    if (peers.length !== this.size)
      throw new Error(`connect: expected ${this.size} peer addresses, got ${peers.length}`);
    const kind = this.opts.transport ?? 'auto';
    for (const peer of peers) {
      this.idToRank.set(peer.id, peer.rank);
      if (peer.rank === this.rank) {
        this.dealers.push(null);
        this.senders.push(null);
        this.chosen.push('self');
        continue;
      }
      const sameHost = peer.host === this.self.host && peer.ipc !== null;
      if (kind === 'ipc' && !sameHost) {
        throw new Error(
          `rank ${this.rank}: transport 'ipc' requested but rank ${peer.rank} is on host ${peer.host}`,
        );
      }
      const endpoint = kind !== 'tcp' && sameHost ? peer.ipc! : peer.tcp;
      const dealer = new Dealer({
        linger: 0,
        sendHighWaterMark: 0,
        receiveHighWaterMark: 0,
        routingId: this.self.id,
        heartbeatInterval: this.opts.heartbeatIntervalMs ?? 1000,
        heartbeatTimeout: this.opts.heartbeatTimeoutMs ?? 10_000,
        ...(this.curve
          ? {
              curvePublicKey: this.curve.publicKey,
              curveSecretKey: this.curve.secretKey,
              curveServerKey: peer.curvePublicKey ?? '',
            }
          : {}),
      });
      if (endpoint.startsWith('tcp://[')) dealer.ipv6 = true;
      dealer.events.on('disconnect', () => this.peerLost(peer.rank, 'disconnected'));
      dealer.connect(endpoint);
      this.dealers.push(dealer);
      this.senders.push(new SerialSender(dealer));
      this.chosen.push(endpoint);
    }
    const early = this.early ?? [];
    this.early = null;
    for (const frames of early) this.dispatch(frames);
  }

  send(peer: number, header: Uint8Array, payload?: Uint8Array): void {
    const sender = this.senders[peer];
    if (!sender) throw new Error(`rank ${this.rank}: no connection to rank ${peer}`);
    sender.send(payload ? [header, payload] : [header]).catch((err: Error) => {
      if (!this.closing) this.peerLost(peer, 'disconnected', `send failed: ${err.message}`);
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
    const probe = this.control({ t: 'probe', id });
    for (let p = 0; p < this.size; p++)
      if (p !== this.rank) this.senders[p]?.send([probe]).catch(() => undefined);
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
      if (state.seq > seq)
        return {
          culprit: at,
          reason: `rank ${at} is already at seq ${state.seq} (${state.op}): collectives were issued in a different order`,
        };
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
    const frame = this.control({ t: 'abort', reason, culprit });
    for (let p = 0; p < this.size; p++)
      if (p !== this.rank && !this.gone.has(p)) this.senders[p]?.send([frame]).catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const bye = this.control({ t: 'bye' });
    await Promise.all(this.senders.map((s) => s?.send([bye]).catch(() => undefined)));
    // Give libzmq a moment to flush the goodbyes (linger is 0 so close never blocks).
    await new Promise((r) => setTimeout(r, 20));
    this.failAll(new PeerError(this.rank, 'closed', `rank ${this.rank}: process group closed`));
    for (const d of this.dealers) d?.close();
    this.inbox.close();
    await this.loop;
  }

  private control(body: Record<string, unknown>): Buffer {
    const packed = controlPackr.pack(body);
    const frame = Buffer.allocUnsafe(packed.length + 1);
    frame[0] = CONTROL_MARK;
    packed.copy(frame, 1);
    return frame;
  }

  private goneError(peer: number): PeerError {
    return new PeerError(peer, 'closed', `rank ${peer} has closed its process group`);
  }

  private peerLost(
    peer: number,
    kind: 'disconnected',
    detail = 'connection lost (process died or froze)',
  ): void {
    if (this.closing || this.gone.has(peer) || this.fatal) return;
    this.failAll(new PeerError(peer, kind, `rank ${peer} ${detail}`));
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

  private async receiveLoop(): Promise<void> {
    for (;;) {
      let frames: Buffer[];
      try {
        frames = await this.inbox.receive();
      } catch {
        if (this.closing || this.inbox.closed) return;
        continue;
      }
      if (this.early) {
        if (this.early.length < MAX_EARLY_MESSAGES) this.early.push(frames);
        continue;
      }
      this.dispatch(frames);
    }
  }

  private dispatch(frames: Buffer[]): void {
    const from = this.idToRank.get(frames[0]!.toString('latin1'));
    if (from === undefined) {
      this.opts.onDrop?.(`rank ${this.rank}: dropped a message from an unknown sender`);
      return;
    }
    const header = frames[1];
    if (!header || frames.length > 3) {
      this.opts.onDrop?.(`rank ${this.rank}: dropped a malformed message from rank ${from}`);
      return;
    }
    if (header[0] === CONTROL_MARK) return this.handleControl(from, header);
    this.queues[from]!.push({ header, payload: frames[2] ?? EMPTY });
  }

  private handleControl(from: number, frame: Buffer): void {
    let body: { t?: unknown; reason?: unknown; culprit?: unknown; id?: unknown };
    try {
      if (frame.length > MAX_CONTROL_BYTES) throw new Error('too large');
      body = controlPackr.unpack(frame.subarray(1)) as typeof body;
    } catch {
      this.opts.onDrop?.(`rank ${this.rank}: dropped an undecodable control message from rank ${from}`);
      return;
    }
    if (body.t === 'bye') {
      this.gone.add(from);
      const w = this.queues[from]!.waiter;
      if (w) {
        this.queues[from]!.waiter = null;
        clearTimeout(w.timer);
        w.reject(this.goneError(from));
      }
    } else if (body.t === 'probe') {
      const waiting = this.queues.findIndex((q) => q.waiter !== null);
      const waitingFor = waiting >= 0 ? waiting : this.stalledOn;
      const state = { t: 'state', id: body.id, ...this.activity, waitingFor };
      this.senders[from]?.send([this.control(state)]).catch(() => undefined);
    } else if (body.t === 'state') {
      const b = body as { id?: unknown; seq?: unknown; op?: unknown; waitingFor?: unknown };
      const replies = typeof b.id === 'number' ? this.probeReplies.get(b.id) : undefined;
      if (replies && typeof b.seq === 'number') {
        replies.set(from, {
          seq: b.seq,
          op: String(b.op),
          waitingFor: typeof b.waitingFor === 'number' ? b.waitingFor : null,
        });
      }
    } else if (body.t === 'abort') {
      const culprit = typeof body.culprit === 'number' ? body.culprit : from;
      this.failAll(new PeerError(culprit, 'aborted', `${String(body.reason)} (reported by rank ${from})`));
    }
  }
}

const EMPTY = Buffer.alloc(0);
