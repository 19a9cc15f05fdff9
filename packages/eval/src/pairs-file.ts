// The verification pairs list as `mtl-data synth` / `from-bin` write it: one pair a line,
// `fileA fileB label` with label 1 (same person) or -1 (different; 0 is accepted too), paths relative to the
// list's directory. Blank lines and lines starting with '#' are skipped.

export interface PairLine {
  readonly a: string;
  readonly b: string;
  readonly same: boolean;
  /** 1-based line number in the file */
  readonly line: number;
}

export function parsePairs(text: string, source = '<pairs>'): PairLine[] {
  const out: PairLine[] = [];
  text.split('\n').forEach((raw, i) => {
    const s = raw.replace(/\r$/, '').trim();
    if (s === '' || s.startsWith('#')) return;
    const f = s.split(/\s+/);
    const where = `${source}:${i + 1}`;
    if (f.length !== 3)
      throw new Error(
        `${where}: expected 3 fields "fileA fileB 1|-1", got ${f.length}: ${JSON.stringify(s)}`,
      );
    const [a, b, label] = f as [string, string, string];
    if (label !== '1' && label !== '-1' && label !== '0') {
      throw new Error(`${where}: label ${JSON.stringify(label)} is not 1 (same) or -1 (different)`);
    }
    out.push({ a, b, same: label === '1', line: i + 1 });
  });
  if (out.length === 0) throw new Error(`${source}: no pairs`);
  return out;
}

/** The distinct files of a pairs list in first-seen order, and each pair as indices into them. */
export function indexPairs(lines: readonly PairLine[]): {
  files: string[];
  pairs: Array<[number, number]>;
  same: Uint8Array;
} {
  const index = new Map<string, number>();
  const files: string[] = [];
  const at = (f: string): number => {
    let i = index.get(f);
    if (i === undefined) {
      i = files.length;
      index.set(f, i);
      files.push(f);
    }
    return i;
  };
  const pairs = lines.map((l): [number, number] => [at(l.a), at(l.b)]);
  return { files, pairs, same: Uint8Array.from(lines, (l) => (l.same ? 1 : 0)) };
}
