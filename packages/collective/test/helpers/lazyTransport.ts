import { PeerError, type Message, type Transport } from '../../src/index.js';

/**
 * An in-memory transport with zeromq's by-reference semantics made worse on
 * purpose: `send` keeps a reference and the bytes are read (copied) only
 * `delayMs` later, in send order. An algorithm that lets the caller reuse a
 * buffer before the peer confirmed receipt hands that peer corrupted data.
 */
export function lazyTransports(n: number, delayMs: number): Transport[] {
  const queues = Array.from({ length: n }, () => Array.from({ length: n }, () => [] as Message[]));
  const waiters = Array.from({ length: n }, () => new Array<((m: Message) => void) | null>(n).fill(null));
  const links = Array.from({ length: n }, () => Array.from({ length: n }, () => Promise.resolve()));
  const deliver = (from: number, to: number, m: Message) => {
    const w = waiters[to]![from];
    if (w) {
      waiters[to]![from] = null;
      w(m);
    } else queues[to]![from]!.push(m);
  };
  return Array.from({ length: n }, (_, rank): Transport => ({
    rank,
    size: n,
    send(peer, header, payload) {
      links[rank]![peer] = links[rank]![peer]!.then(
        () =>
          new Promise<void>((res) =>
            setTimeout(() => {
              deliver(rank, peer, {
                header: Buffer.from(header),
                payload: payload ? Buffer.from(payload) : Buffer.alloc(0),
              });
              res();
            }, delayMs),
          ),
      );
    },
    recv(peer, timeoutMs) {
      const m = queues[rank]![peer]!.shift();
      if (m) return Promise.resolve(m);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => {
          waiters[rank]![peer] = null;
          reject(new PeerError(peer, 'timeout', `no message from rank ${peer} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters[rank]![peer] = (msg) => {
          clearTimeout(t);
          resolve(msg);
        };
      });
    },
    abort() {},
    async close() {},
  }));
}
