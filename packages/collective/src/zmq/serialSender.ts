import type { MessageLike, Writable } from 'zeromq';

/**
 * zeromq.js allows one `send()` in flight per socket (a second one rejects with
 * EBUSY). This queues sends in call order so callers may fire them concurrently.
 */
export class SerialSender {
  private tail: Promise<void> = Promise.resolve();

  constructor(private readonly socket: Writable) {}

  send(parts: MessageLike[]): Promise<void> {
    const next = this.tail.then(() => this.socket.send(parts));
    // Keep the chain alive after a failure; the caller sees the rejection via `next`.
    this.tail = next.catch(() => undefined);
    return next;
  }
}
