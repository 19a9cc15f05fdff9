import { createConnection, type Socket } from 'node:net';
import { FrameReader } from '../transport/frameReader.js';
import {
  encodeStoreFrame,
  packr,
  STORE_MAX_MESSAGE_BYTES,
  toBytes,
  type StoreOp,
  type StoreReply,
  type StoreRequest,
} from './protocol.js';

/** Pause between attempts to reach a store that refuses connections (it may not have started yet). */
const RECONNECT_MS = 100;

export interface StoreClientOptions {
  host: string;
  port: number;
  token: string;
  /** Default timeout of every call, also the time `connect` waits for the store. */
  timeoutMs: number;
  /** Shown in the server's diagnostics (e.g. "rank 3"). */
  name?: string;
}

interface Pending {
  resolve: (rep: StoreReply) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

type Request = Omit<StoreRequest, 'id' | 'token' | 'name'>;

/**
 * Client of {@link StoreServer}. Calls may run concurrently; each has its own timeout. The connection
 * opens with a ping carrying the token (the store admits nothing bigger before it), is retried while
 * the store refuses it, and is opened again by the next call after it breaks; calls in flight on a
 * broken connection end by their timeout, as their requests were lost with it.
 */
export class StoreClient {
  readonly host: string;
  readonly port: number;
  readonly timeoutMs: number;
  private socket: Socket | null = null;
  private opening: Promise<Socket> | null = null;
  /** Id of the ping that opened the current connection: a refusal of it fails every call in flight. */
  private openingPingId = -1;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  private constructor(private readonly opts: StoreClientOptions) {
    this.host = opts.host;
    this.port = opts.port;
    this.timeoutMs = opts.timeoutMs;
  }

  /** Connects and checks (with a ping carrying the token) that the store answers within `timeoutMs`. */
  static async connect(opts: StoreClientOptions): Promise<StoreClient> {
    if (!opts.host) throw new Error('StoreClient.connect: host is required');
    if (!Number.isInteger(opts.port) || opts.port <= 0 || opts.port > 65535) {
      throw new Error(`StoreClient.connect: port must be an integer in 1..65535, got ${opts.port}`);
    }
    if (!(opts.timeoutMs > 0))
      throw new Error(`StoreClient.connect: timeoutMs must be > 0, got ${opts.timeoutMs}`);
    const client = new StoreClient(opts);
    try {
      await client.call({ op: 'ping' }, opts.timeoutMs, 'connect');
    } catch (err) {
      await client.close();
      throw err;
    }
    return client;
  }

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  async set(key: string, value: Uint8Array | string): Promise<void> {
    await this.call({ op: 'set', key, value: toBytes(value) });
  }

  /** Waits until `key` is set (up to `timeoutMs`) and returns its value. */
  async get(key: string, timeoutMs = this.timeoutMs): Promise<Uint8Array> {
    const rep = await this.call({ op: 'get', key, waitMs: timeoutMs }, timeoutMs);
    return rep.value!;
  }

  /** The value of `key`, or null when it is not set; never waits for it. */
  async tryGet(key: string): Promise<Uint8Array | null> {
    const rep = await this.call({ op: 'tryGet', key });
    return rep.value ?? null;
  }

  /** Atomically adds `delta` to the integer at `key` (absent = 0) and returns the new value. */
  async add(key: string, delta: number): Promise<number> {
    if (!Number.isSafeInteger(delta))
      throw new Error(`StoreClient.add("${key}"): delta must be an integer, got ${delta}`);
    const rep = await this.call({ op: 'add', key, delta });
    return rep.number!;
  }

  /**
   * Atomically sets `key` to `desired` if it currently equals `expected` (null: if it
   * is absent). Returns the value after the operation (empty when still absent).
   */
  async compareSet(
    key: string,
    expected: Uint8Array | string | null,
    desired: Uint8Array | string,
  ): Promise<Uint8Array> {
    const rep = await this.call({
      op: 'compareSet',
      key,
      expected: expected === null ? null : toBytes(expected),
      value: toBytes(desired),
    });
    return rep.value!;
  }

  /** Resolves once every key is set; rejects after `timeoutMs` naming the keys. */
  async wait(keys: readonly string[], timeoutMs = this.timeoutMs): Promise<void> {
    if (keys.length === 0) return;
    await this.call({ op: 'wait', keys: [...keys], waitMs: timeoutMs }, timeoutMs);
  }

  /** Deletes `key`; returns whether it existed. */
  async delete(key: string): Promise<boolean> {
    const rep = await this.call({ op: 'delete', key });
    return rep.found === true;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new Error(`store ${this.address}: client closed`));
    }
    this.pending.clear();
    this.socket?.destroy();
    this.socket = null;
    await this.opening?.catch(() => undefined);
  }

  private describe(req: Request): string {
    if (req.key !== undefined) return `${req.op} "${req.key}"`;
    if (req.keys !== undefined) return `${req.op} [${req.keys.map((k) => `"${k}"`).join(', ')}]`;
    return req.op;
  }

  private frame(req: Request, id: number): Buffer {
    const full: StoreRequest = { ...req, id, token: this.opts.token, op: req.op as StoreOp };
    if (this.opts.name !== undefined) full.name = this.opts.name;
    return encodeStoreFrame(full);
  }

  private call(req: Request, timeoutMs = this.timeoutMs, label?: string): Promise<StoreReply> {
    const what = label ?? this.describe(req);
    if (this.closed) return Promise.reject(new Error(`store ${this.address}: ${what} on a closed client`));
    const id = this.nextId++;
    const bytes = this.frame(req, id);
    if (bytes.length - 8 > STORE_MAX_MESSAGE_BYTES) {
      return Promise.reject(
        new Error(
          `store ${this.address}: ${what}: request of ${bytes.length - 8} bytes exceeds the ${STORE_MAX_MESSAGE_BYTES}-byte limit`,
        ),
      );
    }
    const deadline = Date.now() + timeoutMs;
    return new Promise<StoreReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        const hint = label === 'connect' ? ' (is the store running and reachable?)' : '';
        reject(new Error(`store ${this.address}: ${what} timed out after ${timeoutMs} ms${hint}`));
      }, timeoutMs);
      this.pending.set(id, {
        timer,
        resolve,
        reject: (err) => reject(new Error(`store ${this.address}: ${what} failed: ${err.message}`)),
      });
      this.connection(deadline).then(
        (sock) => sock.write(bytes),
        () => undefined, // not reachable before the deadline: the timer reports it
      );
    });
  }

  /** The open connection, or a new one (retried while refused, until `deadline`). */
  private connection(deadline: number): Promise<Socket> {
    if (this.socket && !this.socket.destroyed) return Promise.resolve(this.socket);
    this.opening ??= this.open(deadline).finally(() => (this.opening = null));
    return this.opening;
  }

  private async open(deadline: number): Promise<Socket> {
    for (;;) {
      if (this.closed) throw new Error('client closed');
      try {
        const sock = await this.dial(deadline - Date.now());
        this.attach(sock);
        return sock;
      } catch (err) {
        if (Date.now() + RECONNECT_MS >= deadline) throw err;
        await new Promise((r) => setTimeout(r, RECONNECT_MS));
      }
    }
  }

  private dial(timeoutMs: number): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const sock = createConnection({ host: this.host, port: this.port });
      const timer = setTimeout(
        () => {
          sock.destroy();
          reject(new Error('connect timed out'));
        },
        Math.max(1, timeoutMs),
      );
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.off('error', reject);
        resolve(sock);
      });
      sock.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  private attach(sock: Socket): void {
    sock.setNoDelay(true);
    const reader = new FrameReader(STORE_MAX_MESSAGE_BYTES + 1024, 0, (frame) => this.onReply(frame));
    sock.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch {
        sock.destroy();
      }
    });
    sock.on('error', () => undefined); // 'close' follows
    sock.on('close', () => {
      if (this.socket === sock) this.socket = null;
    });
    if (this.closed) {
      sock.destroy();
      return;
    }
    this.socket = sock;
    this.openingPingId = this.nextId++;
    sock.write(this.frame({ op: 'ping' }, this.openingPingId));
  }

  private failAll(error: string): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(new Error(error));
    }
  }

  private onReply(frame: Buffer): void {
    let rep: StoreReply;
    try {
      rep = packr.unpack(frame) as StoreReply;
    } catch {
      return;
    }
    // The opening ping refused, or a request the server could not even read the id of: every call fails.
    if ((rep.id === this.openingPingId || rep.id === -1) && !rep.ok)
      return this.failAll(rep.error ?? 'unknown error');
    const p = this.pending.get(rep.id);
    if (!p) return;
    clearTimeout(p.timer);
    this.pending.delete(rep.id);
    if (rep.ok) p.resolve(rep);
    else p.reject(new Error(rep.error ?? 'unknown error'));
  }
}
