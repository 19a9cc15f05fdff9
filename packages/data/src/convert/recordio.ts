import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { createInterface } from 'node:readline';

/** MXNet RecordIO magic number (u32 little-endian before every record part). */
export const RECORDIO_MAGIC = 0xced7230a;
const MAGIC_BYTES = Uint8Array.from([0x0a, 0x23, 0xd7, 0xce]);

export class RecordIOError extends Error {
  constructor(
    readonly file: string,
    readonly offset: number,
    reason: string,
  ) {
    super(`${file}: byte offset ${offset}: ${reason}`);
    this.name = 'RecordIOError';
  }
}

/** The image record header (IRHeader) and the bytes after it. */
export interface ImageRecord {
  flag: number;
  /** header.label, or the `flag` labels that follow the header when flag > 0. */
  labels: Float32Array;
  id: bigint;
  id2: bigint;
  /** The encoded image (or, for record 0, nothing). */
  data: Uint8Array;
}

const HEADER_BYTES = 24;

export function parseImageRecord(payload: Uint8Array, file: string, offset: number): ImageRecord {
  if (payload.length < HEADER_BYTES) throw new RecordIOError(file, offset, `record payload of ${payload.length} bytes is shorter than its 24-byte header`);
  const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const flag = dv.getUint32(0, true);
  const label = dv.getFloat32(4, true);
  const id = dv.getBigUint64(8, true);
  const id2 = dv.getBigUint64(16, true);
  let pos = HEADER_BYTES;
  let labels: Float32Array;
  if (flag > 0) {
    if (pos + 4 * flag > payload.length) {
      throw new RecordIOError(file, offset, `header says ${flag} labels but the payload has ${payload.length - pos} bytes left`);
    }
    labels = new Float32Array(flag);
    for (let i = 0; i < flag; i++) labels[i] = dv.getFloat32(pos + 4 * i, true);
    pos += 4 * flag;
  } else {
    labels = Float32Array.of(label);
  }
  return { flag, labels, id, id2, data: payload.subarray(pos) };
}

/** Random access to a .rec file: reads the (possibly multi-part) record starting at a byte offset. */
export class RecordReader {
  private constructor(
    private readonly fh: FileHandle,
    readonly file: string,
    readonly size: number,
  ) {}

  static async open(file: string): Promise<RecordReader> {
    let fh: FileHandle;
    try {
      fh = await open(file, 'r');
    } catch (err) {
      throw new Error(`${file}: cannot open: ${(err as Error).message}`, { cause: err });
    }
    return new RecordReader(fh, file, (await fh.stat()).size);
  }

  private async exact(offset: number, n: number, what: string): Promise<Uint8Array> {
    if (offset + n > this.size) {
      if (offset >= this.size) throw new RecordIOError(this.file, offset, `${what} would start at or past the end of the file (${this.size} bytes)`);
      throw new RecordIOError(this.file, offset, `truncated ${what}: needs ${n} bytes, the file ends ${this.size - offset} bytes later`);
    }
    const b = new Uint8Array(n);
    const { bytesRead } = await this.fh.read(b, 0, n, offset);
    if (bytesRead !== n) throw new RecordIOError(this.file, offset, `short read of ${what} (${bytesRead}/${n} bytes)`);
    return b;
  }

  /** Payload of the record at `offset` (parts of a split record re-joined with the magic between them). */
  async read(offset: number): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let pos = offset;
    for (;;) {
      const start = pos;
      const head = await this.exact(pos, 8, 'record header');
      const dv = new DataView(head.buffer);
      const magic = dv.getUint32(0, true);
      if (magic !== RECORDIO_MAGIC) {
        throw new RecordIOError(this.file, pos, `bad magic 0x${magic.toString(16).padStart(8, '0')} (expected 0x${RECORDIO_MAGIC.toString(16)})`);
      }
      const lrec = dv.getUint32(4, true);
      const cflag = lrec >>> 29;
      const len = lrec & ((1 << 29) - 1);
      if (cflag > 3) throw new RecordIOError(this.file, start, `continuation flag ${cflag} is not one of 0-3`);
      parts.push(await this.exact(pos + 8, len, `record payload (${len} bytes)`));
      pos += 8 + len + ((4 - (len % 4)) % 4);
      // cflag: 0 whole record, 1 first part, 2 middle part, 3 last part. A part that starts a
      // record (0 or 1) after a first part means the split record was never finished.
      if (parts.length === 1) {
        if (cflag === 0) break;
        if (cflag !== 1) throw new RecordIOError(this.file, offset, `record starts with continuation flag ${cflag} (a middle or last part)`);
      } else if (cflag === 0 || cflag === 1) {
        throw new RecordIOError(this.file, offset, `split record has no last part: the part at byte offset ${start} starts a new record (continuation flag ${cflag})`);
      } else if (cflag === 3) break;
      if (pos >= this.size) throw new RecordIOError(this.file, offset, `split record has no last part: the file ends after ${parts.length} part(s)`);
    }
    if (parts.length === 1) return parts[0] as Uint8Array;
    const total = parts.reduce((s, p) => s + p.length, 0) + MAGIC_BYTES.length * (parts.length - 1);
    const out = new Uint8Array(total);
    let k = 0;
    parts.forEach((p, i) => {
      if (i > 0) {
        out.set(MAGIC_BYTES, k);
        k += MAGIC_BYTES.length;
      }
      out.set(p, k);
      k += p.length;
    });
    return out;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

/** Streams `index\toffset` lines of a .idx file (constant memory). */
export async function* readIndex(file: string): AsyncGenerator<{ index: number; offset: number; line: number }> {
  const rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let line = 0;
  try {
    for await (const text of rl) {
      line++;
      if (text.trim() === '') continue;
      const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(text);
      if (m === null) throw new Error(`${file}:${line}: expected "index<TAB>offset", got ${JSON.stringify(text)}`);
      yield { index: Number(m[1]), offset: Number(m[2]), line };
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${file}: cannot open: no such file`, { cause: err });
    throw err;
  } finally {
    rl.close();
  }
}
