import { createHash, timingSafeEqual } from 'node:crypto';
import { Router } from 'zeromq';
import { SerialSender } from '../zmq/serialSender.js';
import {
  packr,
  parseRequest,
  STORE_MAX_MESSAGE_BYTES,
  type StoreReply,
  type StoreRequest,
} from './protocol.js';

export interface StoreServerOptions {
  /** Address to bind (never all interfaces unless you pass 0.0.0.0 yourself). */
  host: string;
  /** TCP port; 0 picks a free one (read it back from `server.port`). */
  port: number;
  /** Shared run token every request must carry. */
  token: string;
  /** Largest request accepted, bytes (default 16 MiB). */
  maxMessageBytes?: number;
  /** Called for rejected or malformed requests (default: silent). */
  onReject?: (reason: string) => void;
}

interface Waiter {
  peer: Buffer;
  id: number;
  keys: string[];
  withValue: boolean;
  timer: NodeJS.Timeout;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/**
 * The rendezvous key/value store (torchrun's TCPStore counterpart) on a ZeroMQ
 * Router. Every request must carry the run token; malformed input is answered
 * with an error (or dropped if it cannot be answered) and never stops the server.
 */
export class StoreServer {
  readonly host: string;
  readonly port: number;
  private readonly data = new Map<string, Uint8Array>();
  private readonly waiters = new Set<Waiter>();
  private readonly sender: SerialSender;
  private readonly tokenDigest: Buffer;
  private closed = false;
  private readonly loop: Promise<void>;

  private constructor(
    private readonly router: Router,
    host: string,
    port: number,
    token: string,
    private readonly onReject: (reason: string) => void,
  ) {
    this.host = host;
    this.port = port;
    this.tokenDigest = digest(token);
    this.sender = new SerialSender(router);
    this.loop = this.serve();
  }

  static async listen(opts: StoreServerOptions): Promise<StoreServer> {
    if (!opts.host)
      throw new Error('StoreServer.listen: host is required (refusing to bind all interfaces implicitly)');
    if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
      throw new Error(`StoreServer.listen: port must be an integer in 0..65535, got ${opts.port}`);
    }
    if (typeof opts.token !== 'string') throw new Error('StoreServer.listen: token must be a string');
    const router = new Router({ linger: 0, maxMessageSize: opts.maxMessageBytes ?? STORE_MAX_MESSAGE_BYTES });
    const hostPart = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
    if (hostPart !== opts.host) router.ipv6 = true;
    try {
      await router.bind(`tcp://${hostPart}:${opts.port === 0 ? '*' : opts.port}`);
    } catch (err) {
      router.close();
      const why = (err as Error).message;
      const inUse = /in use/i.test(why) ? ' (address already in use)' : '';
      throw new Error(`StoreServer.listen: cannot bind ${opts.host}:${opts.port}${inUse}: ${why}`, {
        cause: err,
      });
    }
    const port = Number(/:(\d+)$/.exec(router.lastEndpoint ?? '')?.[1] ?? opts.port);
    return new StoreServer(router, opts.host, port, opts.token, opts.onReject ?? (() => undefined));
  }

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  /** Number of keys held (for tests and diagnostics). */
  get size(): number {
    return this.data.size;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiters) clearTimeout(w.timer);
    this.waiters.clear();
    this.router.close();
    await this.loop;
  }

  private async serve(): Promise<void> {
    while (!this.closed) {
      let frames: Buffer[];
      try {
        frames = await this.router.receive();
      } catch (err) {
        if (this.closed || this.router.closed) return;
        this.onReject(`receive failed: ${(err as Error).message}`);
        continue;
      }
      this.handle(frames);
    }
  }

  private handle(frames: Buffer[]): void {
    const peer = frames[0];
    if (!peer) return;
    if (frames.length !== 2) {
      this.onReject(`dropped a message of ${frames.length - 1} frames (expected 1)`);
      return;
    }
    let raw: unknown;
    try {
      raw = packr.unpack(frames[1]!);
    } catch {
      this.onReject('dropped an undecodable request');
      return;
    }
    const id =
      typeof raw === 'object' && raw !== null && typeof (raw as { id?: unknown }).id === 'number'
        ? (raw as { id: number }).id
        : -1;
    let req: StoreRequest;
    try {
      req = parseRequest(raw);
    } catch (err) {
      this.onReject(`bad request: ${(err as Error).message}`);
      this.reply(peer, { id, ok: false, error: `bad request: ${(err as Error).message}` });
      return;
    }
    const tok = digest(req.token);
    if (!timingSafeEqual(tok, this.tokenDigest)) {
      this.onReject(`rejected ${req.op} from ${req.name ?? 'an unnamed client'}: wrong run token`);
      this.reply(peer, { id, ok: false, error: 'rejected: wrong run token' });
      return;
    }
    this.execute(peer, req);
  }

  private execute(peer: Buffer, req: StoreRequest): void {
    const { id } = req;
    switch (req.op) {
      case 'ping':
        return this.reply(peer, { id, ok: true });
      case 'set':
        this.data.set(req.key!, req.value!);
        this.reply(peer, { id, ok: true });
        return this.wake();
      case 'tryGet':
        return this.reply(peer, { id, ok: true, value: this.data.get(req.key!) ?? null });
      case 'get':
      case 'wait': {
        const keys = req.op === 'get' ? [req.key!] : req.keys!;
        if (keys.every((k) => this.data.has(k))) return this.answerWait(peer, id, keys, req.op === 'get');
        const w: Waiter = {
          peer,
          id,
          keys,
          withValue: req.op === 'get',
          // The client times out on its own; this only forgets the waiter.
          timer: setTimeout(() => this.waiters.delete(w), req.waitMs! + 1000),
        };
        w.timer.unref();
        this.waiters.add(w);
        return;
      }
      case 'add': {
        const cur = this.data.get(req.key!);
        let n = 0;
        if (cur) {
          const text = Buffer.from(cur).toString('utf8');
          n = Number(text);
          if (!/^-?\d+$/.test(text) || !Number.isSafeInteger(n)) {
            return this.reply(peer, {
              id,
              ok: false,
              error: `add: key "${req.key}" holds a non-integer value`,
            });
          }
        }
        n += req.delta!;
        this.data.set(req.key!, Buffer.from(String(n)));
        this.reply(peer, { id, ok: true, number: n });
        return this.wake();
      }
      case 'compareSet': {
        const cur = this.data.get(req.key!);
        const matches =
          req.expected === null ? cur === undefined : cur !== undefined && bytesEqual(cur, req.expected!);
        if (matches) {
          this.data.set(req.key!, req.value!);
          this.reply(peer, { id, ok: true, value: req.value! });
          return this.wake();
        }
        return this.reply(peer, { id, ok: true, value: cur ?? new Uint8Array(0) });
      }
      case 'delete':
        return this.reply(peer, { id, ok: true, found: this.data.delete(req.key!) });
    }
  }

  private answerWait(peer: Buffer, id: number, keys: string[], withValue: boolean): void {
    this.reply(peer, withValue ? { id, ok: true, value: this.data.get(keys[0]!)! } : { id, ok: true });
  }

  private wake(): void {
    for (const w of this.waiters) {
      if (w.keys.every((k) => this.data.has(k))) {
        clearTimeout(w.timer);
        this.waiters.delete(w);
        this.answerWait(w.peer, w.id, w.keys, w.withValue);
      }
    }
  }

  private reply(peer: Buffer, rep: StoreReply): void {
    if (this.closed) return;
    this.sender.send([peer, packr.pack(rep)]).catch((err: Error) => {
      if (!this.closed) this.onReject(`reply failed: ${err.message}`);
    });
  }
}
