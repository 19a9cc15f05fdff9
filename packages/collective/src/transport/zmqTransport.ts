import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Dealer, Router, curveKeyPair } from 'zeromq';
import { SerialSender } from '../zmq/serialSender.js';
import {
  chooseEndpoint,
  ConnectionGone,
  PeerTransport,
  type PeerAddress,
  type TransportKind,
} from './base.js';
import { ipcSocketPath, releaseIpcSocket, sweepStaleSocketsOnce } from './ipcSocket.js';

export { CONTROL_MARK, type PeerAddress, type TransportKind } from './base.js';

const MAX_EARLY_MESSAGES = 10_000;

export interface ZmqTransportOptions {
  rank: number;
  size: number;
  /** Interface address to bind (never all interfaces unless you pass 0.0.0.0). */
  bindHost: string;
  transport?: TransportKind;
  /** This rank's node as peers compare it for ipc (default: the hostname). */
  host?: string;
  /** Encrypt and authenticate with ZeroMQ CURVE. */
  curve?: boolean;
  /** ZMTP heartbeat: a peer whose process froze is disconnected after heartbeatTimeoutMs. */
  heartbeatIntervalMs?: number;
  heartbeatTimeoutMs?: number;
  onDrop?: (reason: string) => void;
}

/**
 * Point-to-point transport on ZeroMQ: every rank binds one Router inbox (tcp on
 * the node's address, plus ipc for same-host peers) and holds one Dealer per
 * peer, whose routing id is the rank's secret id. Offers CURVE encryption.
 */
export class ZmqTransport extends PeerTransport {
  readonly self: PeerAddress;
  private readonly inbox: Router;
  private readonly curve: { publicKey: string; secretKey: string } | null;
  private readonly dealers: (Dealer | null)[] = [];
  private readonly senders: (SerialSender | null)[] = [];
  private early: Buffer[][] | null = [];
  private readonly loop: Promise<void>;

  private constructor(
    private readonly opts: ZmqTransportOptions,
    inbox: Router,
    self: PeerAddress,
    curve: { publicKey: string; secretKey: string } | null,
  ) {
    super(opts.rank, opts.size, opts.onDrop);
    this.inbox = inbox;
    this.self = self;
    this.curve = curve;
    this.loop = this.receiveLoop();
  }

  /** Binds the inbox; publish `transport.self` and then call {@link connect} with everyone's address. */
  static async open(opts: ZmqTransportOptions): Promise<ZmqTransport> {
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
        { cause: err },
      );
    }
    const tcp = inbox.lastEndpoint!;
    let ipc: string | null = null;
    if ((opts.transport ?? 'auto') !== 'tcp') {
      await sweepStaleSocketsOnce();
      const path = ipcSocketPath(id);
      try {
        await inbox.bind(`ipc://${path}`);
        ipc = `ipc://${path}`;
      } catch {
        releaseIpcSocket(path);
        if (opts.transport === 'ipc' || opts.transport === 'shm') {
          inbox.close();
          throw new Error(
            `rank ${opts.rank}: cannot bind ipc://${path} (transport '${opts.transport}' was requested)`,
          );
        }
      }
    }
    const self: PeerAddress = {
      rank: opts.rank,
      host: opts.host ?? hostname(),
      pid: process.pid,
      id,
      tcp,
      ipc,
      curvePublicKey: curve?.publicKey ?? null,
    };
    return new ZmqTransport(opts, inbox, self, curve);
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
      const endpoint = chooseEndpoint(this.rank, this.self, peer, kind);
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
      dealer.events.on('disconnect', () => this.peerLost(peer.rank));
      dealer.connect(endpoint);
      this.dealers.push(dealer);
      this.senders.push(new SerialSender(dealer));
      this.chosen.push(endpoint);
    }
    const early = this.early ?? [];
    this.early = null;
    for (const frames of early) this.dispatch(frames);
  }

  protected override sendFrame(peer: number, header: Uint8Array, payload?: Uint8Array): Promise<void> {
    const sender = this.senders[peer];
    if (!sender) return Promise.reject(new ConnectionGone(`no connection to rank ${peer}`));
    return sender.send(payload ? [header, payload] : [header]);
  }

  override async close(): Promise<void> {
    if (this.closing) return;
    await this.sayBye();
    this.closing = true;
    // Give libzmq a moment to flush the goodbyes (linger is 0 so close never blocks).
    await new Promise((r) => setTimeout(r, 20));
    for (const d of this.dealers) d?.close();
    this.inbox.close();
    if (this.self.ipc) releaseIpcSocket(this.self.ipc.slice('ipc://'.length));
    await this.loop;
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
      this.onDrop?.(`rank ${this.rank}: dropped a message from an unknown sender`);
      return;
    }
    const header = frames[1];
    if (!header || frames.length > 3) {
      this.onDrop?.(`rank ${this.rank}: dropped a malformed message from rank ${from}`);
      return;
    }
    this.deliver(from, header, frames[2] ?? EMPTY);
  }
}

const EMPTY = Buffer.alloc(0);
