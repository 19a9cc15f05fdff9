import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { RecordReader, parseImageRecord, readIndex } from './recordio.js';

export interface FromRecOptions {
  /** Directory with train.rec and train.idx. */
  dir: string;
  out: string;
  onProgress?: (done: number, total: number) => void;
  /** How often (records) the resume checkpoint is written (default 1000). */
  checkpointEvery?: number;
}

export interface FromRecResult {
  images: number;
  /** Records written by this run (the rest were already there). */
  written: number;
  /** Distinct labels among the records this run read (a resumed run skips the ones done before). */
  identities: number;
}

const isJpeg = (b: Uint8Array): boolean => b.length > 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;
export const FROM_REC_STATE = '.mtl-from-rec.json';

/** `<label:6>/<index:8>.jpg`, as the release's converter names extracted images. */
export function recImagePath(label: number, index: number): string {
  return `${String(label).padStart(6, '0')}/${String(index).padStart(8, '0')}.jpg`;
}

/**
 * Extracts the images of an insightface RecordIO training set. Streams the .idx, reads one record
 * at a time (constant memory), writes each file atomically, and keeps a small state file so that a
 * rerun resumes where the previous one stopped (existing files are never rewritten).
 */
export async function fromRec(opts: FromRecOptions): Promise<FromRecResult> {
  const recFile = join(opts.dir, 'train.rec');
  const idxFile = join(opts.dir, 'train.idx');
  const reader = await RecordReader.open(recFile);
  try {
    await stat(idxFile).catch((err: unknown) => {
      throw new Error(`${idxFile}: cannot open: ${(err as Error).message}`, { cause: err });
    });
    await mkdir(opts.out, { recursive: true });
    const statePath = join(opts.out, FROM_REC_STATE);
    const identity = `${reader.size}`;
    let resumeLine = 0;
    try {
      const st = JSON.parse(await readFile(statePath, 'utf8')) as { recSize: string; line: number };
      if (st.recSize === identity) resumeLine = st.line;
    } catch {
      // no usable state: start from the beginning
    }
    let first: { offset: number; line: number } | undefined;
    for await (const e of readIndex(idxFile)) {
      if (e.index === 0) {
        first = e;
        break;
      }
    }
    if (first === undefined) throw new Error(`${idxFile}: has no entry for record 0 (the header record)`);
    const header = parseImageRecord(await reader.read(first.offset), recFile, first.offset);
    // Record 0's labels hold [first identity record, end): image records are 1 .. labels[0]−1.
    const end = header.flag > 0 ? Math.trunc(header.labels[0] as number) : Infinity;
    const total = Number.isFinite(end) ? end - 1 : 0;
    let done = 0;
    let written = 0;
    const labels = new Set<number>();
    const dirs = new Set<string>();
    for await (const e of readIndex(idxFile)) {
      if (e.index === 0 || e.index >= end) continue;
      done++;
      if (e.line <= resumeLine) {
        opts.onProgress?.(done, total);
        continue;
      }
      const rec = parseImageRecord(await reader.read(e.offset), recFile, e.offset);
      const label = Math.trunc(rec.labels[0] as number);
      labels.add(label);
      const rel = recImagePath(label, e.index);
      const dst = join(opts.out, rel);
      const exists = await stat(dst).then(
        () => true,
        () => false,
      );
      if (!exists) {
        const d = join(opts.out, String(label).padStart(6, '0'));
        if (!dirs.has(d)) {
          await mkdir(d, { recursive: true });
          dirs.add(d);
        }
        let jpg: Uint8Array = rec.data;
        if (!isJpeg(jpg)) {
          try {
            jpg = await sharp(rec.data).jpeg({ quality: 95 }).toBuffer();
          } catch (err) {
            throw new Error(`${recFile}: byte offset ${e.offset}: record ${e.index} holds no decodable image: ${(err as Error).message}`, {
              cause: err,
            });
          }
        }
        await writeFile(`${dst}.tmp`, jpg);
        await rename(`${dst}.tmp`, dst);
        written++;
      }
      if (done % (opts.checkpointEvery ?? 1000) === 0) {
        await writeFile(statePath, JSON.stringify({ recSize: identity, line: e.line }));
      }
      opts.onProgress?.(done, total);
    }
    await writeFile(statePath, JSON.stringify({ recSize: identity, line: Number.MAX_SAFE_INTEGER }));
    return { images: done, written, identities: labels.size };
  } finally {
    await reader.close();
  }
}
