/** A received message: a fixed binary header and an optional raw payload. */
export interface Message {
  header: Buffer;
  /** The payload bytes (for a shared-memory message, read from its slot on first access). */
  readonly payload: Buffer;
  /**
   * Present on messages whose payload still sits elsewhere (a shared-memory slot): copies it
   * straight into `dst` (exactly `byteLength` bytes) without materialising a buffer. A payload
   * is read once: either this or `payload`.
   */
  readInto?(dst: Uint8Array): void;
  /**
   * The payload where it lies (a mapped shared-memory slot), or null when it cannot be had
   * without a copy (then use readInto/payload). Valid only until the current synchronous run of
   * code ends: reduce from it at once, never send it or keep it. Consumes the payload.
   */
  view?(): Uint8Array | null;
  readonly byteLength?: number;
}

/** Which rank is to blame for a stall, and why. */
export interface Diagnosis {
  culprit: number;
  reason: string;
}

/** Why a wait on a peer ended without a message. */
export type PeerFailureKind = 'timeout' | 'disconnected' | 'closed' | 'aborted';

export class PeerError extends Error {
  constructor(
    readonly peer: number,
    readonly kind: PeerFailureKind,
    message: string,
  ) {
    super(message);
    this.name = 'PeerError';
  }
}

/**
 * What a collective algorithm sees of the network (Gloo's pair abstraction):
 * ordered point-to-point messages between ranks. Algorithms never touch sockets.
 *
 * Ownership: `send` may hand the payload to the network by reference. The
 * caller must not modify it until the peer has provably received it (a later
 * message from that peer that causally depends on it, or an acknowledgement).
 */
export interface Transport {
  readonly rank: number;
  readonly size: number;
  send(peer: number, header: Uint8Array, payload?: Uint8Array): void;
  /**
   * Sends a payload of `bytes` bytes that `fill` writes straight into the memory it travels from
   * (a free shared-memory slot), in `send` order; false, with nothing done, when the transport has
   * no such memory for it now (the caller then fills a buffer of its own and uses `send`).
   */
  sendInPlace?(peer: number, header: Uint8Array, bytes: number, fill: (dst: Uint8Array) => void): boolean;
  /** Next message from `peer` in send order; rejects with a {@link PeerError} after `timeoutMs`. */
  recv(peer: number, timeoutMs: number): Promise<Message>;
  /** Tells every peer this rank gave up (naming the culprit rank, default itself); they fail their pending waits. */
  abort(reason: string, culprit?: number): void;
  close(): Promise<void>;
  /**
   * After a timeout waiting on `peer`: asks every rank what it is doing and
   * follows the chain of waits to the rank that is really stuck.
   */
  diagnose?(peer: number, seq: number): Promise<Diagnosis>;
  /** The collective this rank is in (its sequence number), for other ranks' diagnoses. */
  setActivity?(seq: number, op: string): void;
  /** How each peer is reached (e.g. 'ipc:///tmp/…', 'tcp://10.0.0.2:4711'; 'self' for this rank). */
  readonly endpoints?: readonly string[];
}
