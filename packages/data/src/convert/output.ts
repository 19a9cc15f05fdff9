// What the converters share about their output: files appear whole or not at all, and a failed run
// can take back the directory it created.
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';

/** Writes `path` under a temporary name and renames it, so no reader ever sees half a file. */
export async function writeAtomically(path: string, bytes: Uint8Array | string): Promise<void> {
  await writeFile(`${path}.tmp`, bytes);
  await rename(`${path}.tmp`, path);
}

/** An output directory, and the topmost directory that creating it made (undefined: it existed). */
export interface OutputDir {
  dir: string;
  created: string | undefined;
}

export async function openOutputDir(dir: string): Promise<OutputDir> {
  return { dir, created: await mkdir(dir, { recursive: true }) };
}

/** Removes what creating `out` made; returns a clause for the error message, or '' when it made nothing. */
export async function removeCreated(out: OutputDir): Promise<string> {
  if (out.created === undefined) return '';
  await rm(out.created, { recursive: true, force: true });
  return `; removed ${out.created}, which this run had created`;
}
