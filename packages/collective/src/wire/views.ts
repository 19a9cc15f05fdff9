/** A real copy into fresh, aligned memory (Buffer#slice would only make a view). */
export function copyBytes(b: Uint8Array): Uint8Array {
  const c = new Uint8Array(b.byteLength);
  c.set(b);
  return c;
}

/** Typed views over received bytes; copies only when libzmq handed back an unaligned buffer. */
export function f32View(b: Uint8Array): Float32Array {
  if (b.byteLength % 4 !== 0)
    throw new Error(`payload of ${b.byteLength} bytes is not a whole number of f32`);
  if (b.byteOffset % 4 === 0) return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  return new Float32Array(copyBytes(b).buffer);
}

export function u16View(b: Uint8Array): Uint16Array {
  if (b.byteLength % 2 !== 0)
    throw new Error(`payload of ${b.byteLength} bytes is not a whole number of 16-bit values`);
  if (b.byteOffset % 2 === 0) return new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2);
  return new Uint16Array(copyBytes(b).buffer);
}

export function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/**
 * Bump allocator for encoded send buffers. `reset` may only be called once
 * every buffer handed out has provably been received (the op's final ack);
 * buffers outgrown are dropped, never reused, so in-flight data stays intact.
 */
export class SendPool {
  private buf = new ArrayBuffer(0);
  private cursor = 0;

  take(bytes: number): Uint8Array {
    const aligned = (bytes + 7) & ~7;
    if (this.cursor + aligned > this.buf.byteLength) {
      this.buf = new ArrayBuffer(Math.max(aligned, this.buf.byteLength * 2, 1 << 16));
      this.cursor = 0;
    }
    const out = new Uint8Array(this.buf, this.cursor, bytes);
    this.cursor += aligned;
    return out;
  }

  /** Pre-sizes so one op's sends fit without reallocating. */
  reserve(bytes: number): void {
    if (this.buf.byteLength < bytes) this.buf = new ArrayBuffer(bytes);
    this.cursor = 0;
  }

  reset(): void {
    this.cursor = 0;
  }
}
