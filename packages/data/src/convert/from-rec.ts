import { mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { openOutputDir, removeCreated, writeAtomically } from './output.js';
import { RecordIOError, RecordReader, parseImageRecord, readIndex, type ImageRecord } from './recordio.js';

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
/** Present in the output while an extraction has not finished (it says why when one failed). */
export const FROM_REC_INCOMPLETE = 'INCOMPLETE';
/** float32 holds every whole number up to 2^24 exactly; a larger label cannot name one identity. */
export const MAX_REC_LABEL = 2 ** 24;

/** `<label:6>/<index:8>.jpg`, as the release's converter names extracted images. */
export function recImagePath(label: number, index: number): string {
  return `${String(label).padStart(6, '0')}/${String(index).padStart(8, '0')}.jpg`;
}

/** The identity label of an image record: a whole number in 0..2^24 (anything else names no directory). */
function identityLabel(rec: ImageRecord, file: string, offset: number, index: number): number {
  const v = rec.labels[0] as number;
  if (!Number.isInteger(v) || v < 0 || v > MAX_REC_LABEL) {
    throw new RecordIOError(file, offset, `record ${index}: label ${v} is not an identity (a whole number in 0..${MAX_REC_LABEL})`);
  }
  return v;
}

interface RecPlan {
  /** Image records are 1 .. end−1 (Infinity: every record after the header). */
  end: number;
  images: number;
}

/**
 * Reads record 0 and checks the whole index against it before anything is written: every offset
 * lies inside the .rec file, and the index lists exactly the image records the header announces.
 */
async function planExtraction(reader: RecordReader, idxFile: string): Promise<RecPlan> {
  const recFile = reader.file;
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
  const end = header.flag > 0 ? (header.labels[0] as number) : Infinity;
  if (!(end === Infinity || (Number.isInteger(end) && end >= 2))) {
    throw new RecordIOError(
      recFile,
      first.offset,
      `record 0 (the header) says the image records end at ${end}; expected a whole number ≥ 2 (images are records 1 .. end−1)`,
    );
  }
  let images = 0;
  for await (const e of readIndex(idxFile)) {
    if (e.offset >= reader.size) {
      throw new Error(`${idxFile}:${e.line}: record ${e.index} at byte offset ${e.offset} lies past the end of ${recFile} (${reader.size} bytes)`);
    }
    if (e.index > 0 && e.index < end) images++;
  }
  if (end !== Infinity && images !== end - 1) {
    throw new Error(`${idxFile}: lists ${images} image records, but record 0 of ${recFile} announces ${end - 1} (records 1..${end - 1})`);
  }
  if (images === 0) throw new Error(`${idxFile}: lists no image records`);
  return { end, images };
}

/**
 * Extracts the images of an insightface RecordIO training set. Checks the index and the header record
 * first (nothing is created for a malformed set), then streams the .idx, reads one record at a time
 * (constant memory), checks each label, writes each file atomically, and keeps a small state file so
 * that a rerun resumes where the previous one stopped (existing files are never rewritten). Until it
 * finishes, the output holds an `INCOMPLETE` file; a failure writes its reason there, or removes the
 * output directory when this run created it and wrote nothing into it.
 */
export async function fromRec(opts: FromRecOptions): Promise<FromRecResult> {
  const recFile = join(opts.dir, 'train.rec');
  const idxFile = join(opts.dir, 'train.idx');
  const reader = await RecordReader.open(recFile);
  try {
    await stat(idxFile).catch((err: unknown) => {
      throw new Error(`${idxFile}: cannot open: ${(err as Error).message}`, { cause: err });
    });
    const { end, images: total } = await planExtraction(reader, idxFile);
    const out = await openOutputDir(opts.out);
    const statePath = join(opts.out, FROM_REC_STATE);
    const marker = join(opts.out, FROM_REC_INCOMPLETE);
    const identity = `${reader.size}`;
    let resumeLine = 0;
    try {
      const st = JSON.parse(await readFile(statePath, 'utf8')) as { recSize: string; line: number };
      if (st.recSize === identity) resumeLine = st.line;
    } catch {
      // no usable state: start from the beginning
    }
    await writeFile(marker, `mtl-data from-rec ${opts.dir} has not finished; rerun it to resume\n`);
    let done = 0;
    let written = 0;
    let at = 'the index';
    const labels = new Set<number>();
    const dirs = new Set<string>();
    try {
      for await (const e of readIndex(idxFile)) {
        if (e.index === 0 || e.index >= end) continue;
        done++;
        if (e.line <= resumeLine) {
          opts.onProgress?.(done, total);
          continue;
        }
        at = `record ${e.index}`;
        const rec = parseImageRecord(await reader.read(e.offset), recFile, e.offset);
        const label = identityLabel(rec, recFile, e.offset, e.index);
        labels.add(label);
        const dst = join(opts.out, recImagePath(label, e.index));
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
          await writeAtomically(dst, jpg);
          written++;
        }
        if (done % (opts.checkpointEvery ?? 1000) === 0) {
          await writeFile(statePath, JSON.stringify({ recSize: identity, line: e.line }));
        }
        opts.onProgress?.(done, total);
      }
    } catch (err) {
      const msg = (err as Error).message;
      if (written === 0 && resumeLine === 0) {
        const removed = await removeCreated(out);
        if (removed !== '') throw new Error(`${msg}${removed}`, { cause: err });
      }
      await writeFile(marker, `mtl-data from-rec ${opts.dir} stopped at ${at}: ${msg}\n`);
      throw new Error(`${msg}; ${opts.out} is incomplete (${written} images written now, see ${marker})`, { cause: err });
    }
    await writeFile(statePath, JSON.stringify({ recSize: identity, line: Number.MAX_SAFE_INTEGER }));
    await unlink(marker);
    return { images: done, written, identities: labels.size };
  } finally {
    await reader.close();
  }
}
