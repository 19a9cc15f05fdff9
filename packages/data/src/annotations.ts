import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ageGroup, type AgeGroupCount } from './age-groups.js';

/** One line of an annotation list: `id filename age gender`. */
export interface AnnotationEntry {
  /** The identity id as written in the file. */
  id: number;
  /** Path relative to the dataset root. */
  file: string;
  age: number;
  /** 1 male, 0 female. */
  gender: number;
  /** 1-based line number in the list (for error messages). */
  line: number;
}

/** A parsed list with identities remapped to 0..C−1 and ages grouped. */
export interface Dataset {
  root: string;
  /** Where the list came from (for messages). */
  source: string;
  files: string[];
  labels: Int32Array;
  ages: Float32Array;
  groups: Int32Array;
  genders: Int32Array;
  /** Number of identities, the CosFace width. */
  numClasses: number;
  /** originalIds[label] is the id written in the list. */
  originalIds: number[];
  ageGroups: AgeGroupCount;
}

export class AnnotationError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    reason: string,
    readonly text: string,
  ) {
    super(`${file}:${line}: ${reason}: ${JSON.stringify(text)}`);
    this.name = 'AnnotationError';
  }
}

/** A dataset that cannot be used as a whole (missing or empty list). */
export class DatasetError extends Error {
  override name = 'DatasetError';
}

const INTEGER = /^[0-9]+$/;
const NUMBER = /^[+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/;

/** Parses annotation text. Blank lines are allowed; anything else malformed throws AnnotationError. */
export function parseAnnotations(text: string, source = '<annotations>'): AnnotationEntry[] {
  const out: AnnotationEntry[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = (lines[i] as string).replace(/\r$/, '');
    if (raw.trim() === '') continue;
    const line = i + 1;
    const fields = raw.trim().split(/\s+/);
    if (fields.length !== 4) {
      throw new AnnotationError(source, line, `expected 4 fields "id filename age gender", got ${fields.length}`, raw);
    }
    const [id, file, age, gender] = fields as [string, string, string, string];
    if (id.startsWith('-')) throw new AnnotationError(source, line, `negative identity id ${id}`, raw);
    if (!INTEGER.test(id)) throw new AnnotationError(source, line, `identity id ${JSON.stringify(id)} is not a non-negative integer`, raw);
    if (!NUMBER.test(age)) throw new AnnotationError(source, line, `age ${JSON.stringify(age)} is not a non-negative number`, raw);
    if (gender !== '0' && gender !== '1') throw new AnnotationError(source, line, `gender ${JSON.stringify(gender)} is not 0 or 1`, raw);
    const ageValue = Number(age);
    if (ageValue > 150) throw new AnnotationError(source, line, `age ${age} is out of range 0..150`, raw);
    out.push({ id: Number(id), file, age: ageValue, gender: Number(gender), line });
  }
  return out;
}

/**
 * Remaps identity ids to 0..C−1 in ascending order of the original id (so the mapping does not
 * depend on line order) and computes age groups.
 */
export function buildDataset(
  entries: readonly AnnotationEntry[],
  opts: { root: string; source?: string; ageGroups?: AgeGroupCount },
): Dataset {
  const ageGroups = opts.ageGroups ?? 7;
  const originalIds = [...new Set(entries.map((e) => e.id))].sort((a, b) => a - b);
  const remap = new Map(originalIds.map((id, label) => [id, label]));
  const n = entries.length;
  const ds: Dataset = {
    root: opts.root,
    source: opts.source ?? '<annotations>',
    files: new Array<string>(n),
    labels: new Int32Array(n),
    ages: new Float32Array(n),
    groups: new Int32Array(n),
    genders: new Int32Array(n),
    numClasses: originalIds.length,
    originalIds,
    ageGroups,
  };
  entries.forEach((e, i) => {
    ds.files[i] = e.file;
    ds.labels[i] = remap.get(e.id) as number;
    ds.ages[i] = e.age;
    ds.groups[i] = ageGroup(e.age, ageGroups);
    ds.genders[i] = e.gender;
  });
  return ds;
}

/** Reads and parses an annotation list; `root` defaults to the list's directory. */
export async function loadDataset(
  listFile: string,
  opts: { root?: string; ageGroups?: AgeGroupCount } = {},
): Promise<Dataset> {
  let text: string;
  try {
    text = await readFile(listFile, 'utf8');
  } catch (err) {
    throw new DatasetError(`${listFile}: cannot read annotation list: ${(err as Error).message}`, { cause: err });
  }
  const entries = parseAnnotations(text, listFile);
  if (entries.length === 0) throw new DatasetError(`${listFile}: annotation list is empty`);
  return buildDataset(entries, { root: opts.root ?? dirname(listFile), source: listFile, ageGroups: opts.ageGroups ?? 7 });
}
