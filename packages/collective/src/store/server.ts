import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { FrameReader } from '../transport/frameReader.js';
import {
  encodeStoreFrame,
  packr,
  parseRequest,
  STORE_MAX_MESSAGE_BYTES,
  STORE_MAX_UNAUTHENTICATED_MESSAGE_BYTES,
  type StoreReply,
  type StoreRequest,
} from './protocol.js';

/** How long a new connection may stay silent or tokenless before it is dropped (default). */
export const STORE_AUTH_TIMEOUT_MS = 5000;
/** How many connections may wait for authentication at once (default); one more drops the oldest. */
export const STORE_MAX_UNAUTHENTICATED = 64;

export interface StoreServerOptions {
  /** Address to bind (never all interfaces unless you pass 0.0.0.0 yourself). */
  host: string;
  /** TCP port; 0 picks a free one (read it back from `server.port`). */
  port: number;
  /** Shared run token every request must carry. */
  token: string;
  /** Largest request accepted, bytes (default 16 MiB). */
  maxMessageBytes?: number;
  /** A connection that sends no request carrying the run token within this long is dropped (default 5 s). */
  authTimeoutMs?: number;
  /** Connections waiting to authenticate, at most (default 64); a new one beyond drops the oldest. */
  maxUnauthenticated?: number;
  /** Called for rejected or malformed requests and dropped connections (default: silent). */
  onReject?: (reason: string) => void;
}

/** One client connection; `authed` once a request carried the run token. */
interface Conn {
  socket: Socket;
  remote: string;
  reader: FrameReader;
  authed: boolean;
  timer: NodeJS.Timeout | null;
}

interface Waiter {
  conn: Conn;
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
 * The rendezvous key/value store (torchrun's TCPStore counterpart) on Node's TCP sockets, one
 * length-prefixed msgpack frame per request and reply. Every request must carry the run token. A
 * connection is anonymous until its first request proves the token: it may send only small frames,
 * must prove it within `authTimeoutMs`, and at most `maxUnauthenticated` anonymous connections are
 * held (a new one beyond evicts the oldest), so idle strangers cannot pile up descriptors. A wrong
 * token is answered and the connection closed. Malformed input from a member is answered with an
 * error (or dropped if it cannot be answered) and never stops the server.
 */
export class StoreServer {
  readonly host: string;
  readonly port: number;
  private readonly data = new Map<string, Uint8Array>();
  private readonly waiters = new Set<Waiter>();
  private readonly conns = new Set<Conn>();
  /** Connections not yet authenticated, oldest first (a Set keeps insertion order). */
  private readonly anonymous = new Set<Conn>();
  private readonly tokenDigest: Buffer;
  private readonly maxMessageBytes: number;
  private readonly authTimeoutMs: number;
  private readonly maxUnauthenticated: number;
  private readonly onReject: (reason: string) => void;
  private closed = false;

  private constructor(
    private readonly server: Server,
    opts: StoreServerOptions,
    port: number,
  ) {
    this.host = opts.host;
    this.port = port;
    this.tokenDigest = digest(opts.token);
    this.maxMessageBytes = opts.maxMessageBytes ?? STORE_MAX_MESSAGE_BYTES;
    this.authTimeoutMs = opts.authTimeoutMs ?? STORE_AUTH_TIMEOUT_MS;
    this.maxUnauthenticated = opts.maxUnauthenticated ?? STORE_MAX_UNAUTHENTICATED;
    this.onReject = opts.onReject ?? (() => undefined);
    server.on('connection', (socket) => this.accept(socket));
  }

  static async listen(opts: StoreServerOptions): Promise<StoreServer> {
    if (!opts.host)
      throw new Error('StoreServer.listen: host is required (refusing to bind all interfaces implicitly)');
    if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
      throw new Error(`StoreServer.listen: port must be an integer in 0..65535, got ${opts.port}`);
    }
    if (typeof opts.token !== 'string') throw new Error('StoreServer.listen: token must be a string');
    for (const [name, v] of [
      ['authTimeoutMs', opts.authTimeoutMs],
      ['maxUnauthenticated', opts.maxUnauthenticated],
    ] as const) {
      if (v !== undefined && !(Number.isInteger(v) && v > 0))
        throw new Error(`StoreServer.listen: ${name} must be a positive integer, got ${v}`);
    }
    const server = createServer({ noDelay: true });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: opts.host, port: opts.port }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      const why = (err as Error).message;
      const inUse = /in use/i.test(why) ? ' (address already in use)' : '';
      throw new Error(`StoreServer.listen: cannot bind ${opts.host}:${opts.port}${inUse}: ${why}`, {
        cause: err,
      });
    }
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : opts.port;
    return new StoreServer(server, opts, port);
  }

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  /** Number of keys held (for tests and diagnostics). */
  get size(): number {
    return this.data.size;
  }

  /** Open connections, and how many of them have not authenticated yet (for tests and diagnostics). */
  get connections(): { open: number; unauthenticated: number } {
    return { open: this.conns.size, unauthenticated: this.anonymous.size };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiters) clearTimeout(w.timer);
    this.waiters.clear();
    for (const c of [...this.conns]) {
      c.socket.destroy();
      this.forget(c);
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    const conn: Conn = {
      socket,
      remote: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`,
      reader: null!,
      authed: false,
      timer: null,
    };
    conn.reader = new FrameReader(STORE_MAX_UNAUTHENTICATED_MESSAGE_BYTES, 0, (frame) =>
      this.handle(conn, frame),
    );
    this.conns.add(conn);
    this.anonymous.add(conn);
    conn.timer = setTimeout(
      () => this.drop(conn, `no request with the run token within ${this.authTimeoutMs} ms`),
      this.authTimeoutMs,
    );
    conn.timer.unref();
    socket.on('data', (chunk: Buffer) => {
      try {
        conn.reader.push(chunk);
      } catch (err) {
        this.drop(conn, `malformed frame: ${(err as Error).message}`);
      }
    });
    socket.on('error', () => undefined); // 'close' follows
    socket.on('close', () => this.forget(conn));
    if (this.anonymous.size > this.maxUnauthenticated) {
      const oldest = this.anonymous.values().next().value as Conn;
      this.drop(
        oldest,
        `more than ${this.maxUnauthenticated} connections waiting to authenticate; the oldest goes`,
      );
    }
  }

  private drop(conn: Conn, why: string): void {
    if (!this.conns.has(conn)) return;
    this.onReject(`dropped the connection from ${conn.remote}: ${why}`);
    conn.socket.destroy();
    this.forget(conn);
  }

  private forget(conn: Conn): void {
    if (conn.timer) clearTimeout(conn.timer);
    conn.timer = null;
    this.conns.delete(conn);
    this.anonymous.delete(conn);
    for (const w of this.waiters) {
      if (w.conn === conn) {
        clearTimeout(w.timer);
        this.waiters.delete(w);
      }
    }
  }

  private handle(conn: Conn, frame: Buffer): void {
    if (!this.conns.has(conn)) return;
    let raw: unknown;
    try {
      raw = packr.unpack(frame);
    } catch {
      if (!conn.authed) return this.drop(conn, 'an undecodable request before authenticating');
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
      this.reply(conn, { id, ok: false, error: `bad request: ${(err as Error).message}` });
      if (!conn.authed) this.endAfterReply(conn);
      return;
    }
    const tok = digest(req.token);
    if (!timingSafeEqual(tok, this.tokenDigest)) {
      this.onReject(
        `rejected ${req.op} from ${req.name ?? 'an unnamed client'} (${conn.remote}): wrong run token`,
      );
      this.reply(conn, { id, ok: false, error: 'rejected: wrong run token' });
      this.endAfterReply(conn);
      return;
    }
    if (!conn.authed) {
      conn.authed = true;
      if (conn.timer) clearTimeout(conn.timer);
      conn.timer = null;
      this.anonymous.delete(conn);
      conn.reader.setMaxHeaderBytes(this.maxMessageBytes);
    }
    this.execute(conn, req);
  }

  /** Ends a connection after what was written to it (a refusal) has been sent. */
  private endAfterReply(conn: Conn): void {
    conn.socket.end();
    this.forget(conn);
  }

  private execute(peer: Conn, req: StoreRequest): void {
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
          conn: peer,
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

  private answerWait(peer: Conn, id: number, keys: string[], withValue: boolean): void {
    this.reply(peer, withValue ? { id, ok: true, value: this.data.get(keys[0]!)! } : { id, ok: true });
  }

  private wake(): void {
    for (const w of this.waiters) {
      if (w.keys.every((k) => this.data.has(k))) {
        clearTimeout(w.timer);
        this.waiters.delete(w);
        this.answerWait(w.conn, w.id, w.keys, w.withValue);
      }
    }
  }

  private reply(conn: Conn, rep: StoreReply): void {
    if (this.closed || conn.socket.destroyed) return;
    conn.socket.write(encodeStoreFrame(rep));
  }
}
