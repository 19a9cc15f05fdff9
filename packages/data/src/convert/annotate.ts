// `mtl-data annotate`: the release's annotation list (`id filename age gender`, 1 = male) for an ImageFolder
// tree. Ages and genders come from an estimator the caller passes (face-api's age/gender network in the CLI;
// this package has no tfjs) or from a published list. Work is journalled batch by batch beside the output,
// so an interrupted run resumes; the list itself appears only when complete.
import {
  appendFileSync,
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { parseAnnotations } from '../annotations.js';
import { formatIdentityMap, identityMapPath, listImageFolder, type FolderImage } from './image-folder.js';

export interface FaceLabel {
  /** years */
  readonly age: number;
  /** 1 male, 0 female */
  readonly gender: 0 | 1;
}

/** An estimator's answer for one image: a label, or why the image could not be read. */
export type LabelResult = FaceLabel | { readonly error: string };

/** Labels a batch of images (absolute paths), one result per path, in order. */
export type LabelEstimator = (paths: string[]) => Promise<LabelResult[]>;

export interface AnnotateOptions {
  /** the ImageFolder tree's root */
  root: string;
  /** the annotation list to write; its paths are relative to its own folder, so loadDataset finds them */
  out: string;
  /** needed unless `published` covers every image */
  estimate?: LabelEstimator;
  /** a published list (`id filename age gender`) whose ages and genders are taken where its file names match */
  published?: string;
  /** images per estimator call */
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface AnnotateResult {
  readonly images: number;
  readonly identities: number;
  readonly estimated: number;
  readonly fromPublished: number;
  /** labelled by an earlier, interrupted run */
  readonly resumed: number;
  readonly unreadable: { file: string; reason: string }[];
  readonly out: string;
  readonly identityMap: string;
  /** the list of unreadable images, when there were any */
  readonly unreadableList?: string;
}

type JournalEntry = { file: string; age: number; gender: 0 | 1 } | { file: string; error: string };

/** `<identity>/<file>`: the part of a path that names the same image in any copy of a face set. */
export function imageKey(path: string): string {
  return path.split(/[\\/]/).slice(-2).join('/');
}

/** Published labels by image key (a key listed twice with different labels is an error naming both lines). */
export function readPublished(file: string): Map<string, FaceLabel & { line: number }> {
  const out = new Map<string, FaceLabel & { line: number }>();
  for (const e of parseAnnotations(readFileSync(file, 'utf8'), file)) {
    const key = imageKey(e.file);
    const gender = e.gender === 1 ? 1 : 0;
    const prev = out.get(key);
    if (prev && (prev.age !== e.age || prev.gender !== gender))
      throw new Error(`${file}:${e.line}: ${key} is also on line ${prev.line} with another age or gender`);
    out.set(key, { age: e.age, gender, line: e.line });
  }
  return out;
}

/** Reads a journal; a line torn by the interruption (the last one) is dropped. */
function readJournal(path: string): Map<string, JournalEntry> {
  const out = new Map<string, JournalEntry>();
  if (!existsSync(path)) return out;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    try {
      const e = JSON.parse(line) as JournalEntry;
      if (typeof e.file === 'string') out.set(e.file, e);
    } catch {
      // the write that was cut off: its batch is redone
    }
  }
  return out;
}

function appendDurably(path: string, text: string): void {
  appendFileSync(path, text);
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function writeAtomically(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

/** The age as written in a list: whole years (the release's lists hold integers). */
export const formatAge = (age: number): string => String(Math.max(0, Math.round(age)));

export async function annotateImageFolder(opts: AnnotateOptions): Promise<AnnotateResult> {
  const { identities, images } = listImageFolder(opts.root);
  const published = opts.published ? readPublished(opts.published) : undefined;
  const journalPath = `${opts.out}.partial`;
  const journal = readJournal(journalPath);
  const resumed = images.filter((im) => journal.has(im.file)).length;
  const todo: FolderImage[] = [];
  let fromPublished = 0;
  for (const im of images) {
    if (journal.has(im.file)) continue;
    const p = published?.get(imageKey(im.file));
    if (p) {
      journal.set(im.file, { file: im.file, age: p.age, gender: p.gender });
      fromPublished++;
    } else todo.push(im);
  }
  if (todo.length > 0 && !opts.estimate) {
    throw new Error(
      `${todo.length} of ${images.length} images have no age in ${opts.published ?? 'a published list'} ` +
        `(first: ${todo[0]!.file}) and no estimator was given`,
    );
  }
  const batchSize = opts.batchSize ?? 64;
  let done = images.length - todo.length;
  let estimated = 0;
  opts.onProgress?.(done, images.length);
  const root = resolve(opts.root);
  for (let i = 0; i < todo.length; i += batchSize) {
    const batch = todo.slice(i, i + batchSize);
    const results = await opts.estimate!(batch.map((im) => join(root, im.file)));
    if (results.length !== batch.length)
      throw new Error(`the estimator answered ${results.length} results for ${batch.length} images`);
    const lines = batch.map((im, k): JournalEntry => {
      const r = results[k]!;
      return 'error' in r ? { file: im.file, error: r.error } : { file: im.file, age: r.age, gender: r.gender };
    });
    appendDurably(journalPath, lines.map((l) => JSON.stringify(l) + '\n').join(''));
    for (const l of lines) journal.set(l.file, l);
    estimated += lines.filter((l) => !('error' in l)).length;
    done += batch.length;
    opts.onProgress?.(done, images.length);
  }
  const unreadable: { file: string; reason: string }[] = [];
  const labelled: { im: FolderImage; age: number; gender: 0 | 1 }[] = [];
  for (const im of images) {
    const e = journal.get(im.file)!;
    if ('error' in e) unreadable.push({ file: im.file, reason: e.error });
    else labelled.push({ im, age: e.age, gender: e.gender });
  }
  // ids over the identities that kept an image, so they stay contiguous when a folder's images all failed
  const kept = identities.filter((_, id) => labelled.some((l) => l.im.id === id));
  const idOf = new Map(kept.map((name, id) => [name, id]));
  const listDir = resolve(dirname(opts.out));
  const listed = (file: string) => relative(listDir, join(root, file)).split('\\').join('/');
  const list = labelled.map(
    (l) => `${idOf.get(l.im.identity)!} ${listed(l.im.file)} ${formatAge(l.age)} ${l.gender}\n`,
  );
  const identityMap = identityMapPath(opts.out);
  writeAtomically(identityMap, formatIdentityMap(kept));
  const unreadableList = `${opts.out.replace(/(\.txt)?$/, '')}.unreadable.txt`;
  if (unreadable.length > 0)
    writeAtomically(unreadableList, unreadable.map((u) => `${u.file}\t${u.reason}\n`).join(''));
  else rmSync(unreadableList, { force: true });
  writeAtomically(opts.out, list.join(''));
  rmSync(journalPath, { force: true });
  return {
    images: images.length,
    identities: kept.length,
    estimated,
    fromPublished,
    resumed,
    unreadable,
    out: opts.out,
    identityMap,
    ...(unreadable.length > 0 ? { unreadableList } : {}),
  };
}
