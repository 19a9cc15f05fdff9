import { Dealer } from 'zeromq';
import { SerialSender } from '../zmq/serialSender.js';
import {
  packr,
  STORE_MAX_MESSAGE_BYTES,
  toBytes,
  type StoreOp,
  type StoreReply,
  type StoreRequest,
} from './protocol.js';

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

/** Client of {@link StoreServer}. Calls may run concurrently; each has its own timeout. */
export class StoreClient {
  readonly host: string;
  readonly port: number;
  readonly timeoutMs: number;
  private readonly dealer: Dealer;
  private readonly sender: SerialSender;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  private readonly loop: Promise<void>;

  private constructor(private readonly opts: StoreClientOptions) {
    this.host = opts.host;
    this.port = opts.port;
    this.timeoutMs = opts.timeoutMs;
    this.dealer = new Dealer({ linger: 0, maxMessageSize: STORE_MAX_MESSAGE_BYTES });
    const hostPart = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
    if (hostPart !== opts.host) this.dealer.ipv6 = true;
    this.dealer.connect(`tcp://${hostPart}:${opts.port}`);
    this.sender = new SerialSender(this.dealer);
    this.loop = this.receiveLoop();
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
    this.dealer.close();
    await this.loop;
  }

  private describe(req: Request): string {
    if (req.key !== undefined) return `${req.op} "${req.key}"`;
    if (req.keys !== undefined) return `${req.op} [${req.keys.map((k) => `"${k}"`).join(', ')}]`;
    return req.op;
  }

  private call(req: Request, timeoutMs = this.timeoutMs, label?: string): Promise<StoreReply> {
    const what = label ?? this.describe(req);
    if (this.closed) return Promise.reject(new Error(`store ${this.address}: ${what} on a closed client`));
    const id = this.nextId++;
    const full: StoreRequest = { ...req, id, token: this.opts.token, op: req.op as StoreOp };
    if (this.opts.name !== undefined) full.name = this.opts.name;
    const payload = packr.pack(full);
    if (payload.length > STORE_MAX_MESSAGE_BYTES) {
      return Promise.reject(
        new Error(
          `store ${this.address}: ${what}: request of ${payload.length} bytes exceeds the ${STORE_MAX_MESSAGE_BYTES}-byte limit`,
        ),
      );
    }
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
      this.sender.send([payload]).catch((err: Error) => {
        const p = this.pending.get(id);
        if (!p) return;
        clearTimeout(p.timer);
        this.pending.delete(id);
        p.reject(err);
      });
    });
  }

  private async receiveLoop(): Promise<void> {
    while (!this.closed) {
      let frames: Buffer[];
      try {
        frames = await this.dealer.receive();
      } catch {
        if (this.closed || this.dealer.closed) return;
        continue;
      }
      let rep: StoreReply;
      try {
        rep = packr.unpack(frames[0]!) as StoreReply;
      } catch {
        continue;
      }
      if (rep.id === -1 && !rep.ok) {
        // The server could not even read our request id: fail everything in flight.
        for (const [id, p] of this.pending) {
          clearTimeout(p.timer);
          this.pending.delete(id);
          p.reject(new Error(rep.error ?? 'unknown error'));
        }
        continue;
      }
      const p = this.pending.get(rep.id);
      if (!p) continue;
      clearTimeout(p.timer);
      this.pending.delete(rep.id);
      if (rep.ok) p.resolve(rep);
      else p.reject(new Error(rep.error ?? 'unknown error'));
    }
  }
}
