// The tests' own MXNet RecordIO writer (spec §7), written from the format description: it writes
// well-formed sets and, on request, the malformed ones a converter must refuse.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';

export const MAGIC = 0xced7230a;

export function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
}

/** IRHeader {flag, label, id, id2} + extra labels + data, as MXNet's recordio.pack does. */
export function pack(labels: number[], data: Uint8Array, id = 0): Buffer {
  const h = Buffer.alloc(24);
  const flag = labels.length === 1 ? 0 : labels.length;
  h.writeUInt32LE(flag, 0);
  h.writeFloatLE(flag === 0 ? (labels[0] as number) : 0, 4);
  h.writeBigUInt64LE(BigInt(id), 8);
  const extra = Buffer.alloc(flag * 4);
  if (flag > 0) labels.forEach((l, i) => extra.writeFloatLE(l, 4 * i));
  return Buffer.concat([h, extra, data]);
}

/** One record part: magic, length with the continuation flag in its upper 3 bits, payload, padding. */
export function frame(payload: Buffer, cflag = 0): Buffer {
  const pad = Buffer.alloc((4 - (payload.length % 4)) % 4);
  return Buffer.concat([u32(MAGIC), u32((cflag << 29) | payload.length), payload, pad]);
}

export async function jpeg(v: number): Promise<Buffer> {
  return sharp({ create: { width: 8, height: 8, channels: 3, background: { r: v, g: 0, b: 0 } } }).jpeg().toBuffer();
}

export interface RecSetOptions {
  /** This image record (1-based) is split in two parts, as MXNet writes a payload holding the magic. */
  splitRecord?: number;
  /** This image record gets a first part and no last part: the next record follows directly. */
  unterminatedSplit?: number;
  /** Record 0's first label (default 1 + number of images: the end of the image records). */
  headerEnd?: number;
}

export interface RecSet {
  /** The image bytes each image record holds, in order. */
  images: Buffer[];
  /** Byte offset of every record, by record index. */
  offsets: number[];
  recBytes: number;
}

/** Writes train.rec/.idx: record 0 header [end, …], one image record per label, then identity records. */
export async function writeRec(dir: string, labels: number[], opts: RecSetOptions = {}): Promise<RecSet> {
  const end = opts.headerEnd ?? 1 + labels.length;
  const recs: Buffer[] = [frame(pack([end, 1 + labels.length + 2], new Uint8Array(0)))];
  const images: Buffer[] = [];
  for (const [i, l] of labels.entries()) {
    const img = await jpeg(i * 20);
    images.push(img);
    const payload = pack([l], img, i + 1);
    const cut = 30;
    if (opts.splitRecord === i + 1) {
      // MXNet cuts a payload where the magic number occurs and drops the magic there.
      recs.push(Buffer.concat([frame(payload.subarray(0, cut), 1), frame(payload.subarray(cut), 3)]));
      // Re-joined payload = part1 + magic + part2: make the image bytes match that.
      images[i] = Buffer.concat([payload.subarray(24, cut), u32(MAGIC), payload.subarray(cut)]);
    } else if (opts.unterminatedSplit === i + 1) {
      recs.push(frame(payload.subarray(0, cut), 1));
    } else recs.push(frame(payload));
  }
  recs.push(frame(pack([0, 2], new Uint8Array(0))), frame(pack([2, 3], new Uint8Array(0))));
  let off = 0;
  const offsets: number[] = [];
  for (const r of recs) {
    offsets.push(off);
    off += r.length;
  }
  await writeFile(join(dir, 'train.rec'), Buffer.concat(recs));
  await writeFile(join(dir, 'train.idx'), offsets.map((o, i) => `${i}\t${o}`).join('\n') + '\n');
  return { images, offsets, recBytes: off };
}
