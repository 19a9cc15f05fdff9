// Embedding arithmetic on plain typed arrays: the protocols never see tfjs.

/** A set of `n` embeddings of `dim` values each, stored row after row. */
export interface EmbeddingSet {
  readonly n: number;
  readonly dim: number;
  readonly data: Float32Array;
}

export function embeddingSet(data: Float32Array, dim: number): EmbeddingSet {
  if (!Number.isInteger(dim) || dim <= 0)
    throw new Error(`embeddingSet: dim must be a positive integer, got ${dim}`);
  if (data.length % dim !== 0) {
    throw new Error(`embeddingSet: ${data.length} values is not a whole number of ${dim}-d embeddings`);
  }
  return { n: data.length / dim, dim, data };
}

export function row(set: EmbeddingSet, i: number): Float32Array {
  if (!(i >= 0 && i < set.n)) throw new Error(`embedding index ${i} out of range [0, ${set.n})`);
  return set.data.subarray(i * set.dim, (i + 1) * set.dim);
}

/** Unit-length copy of each row; a zero row stays zero (its similarity to anything is then 0). */
export function l2NormalizeRows(set: EmbeddingSet): EmbeddingSet {
  const out = new Float32Array(set.data.length);
  for (let i = 0; i < set.n; i++) {
    const off = i * set.dim;
    let ss = 0;
    for (let k = 0; k < set.dim; k++) ss += set.data[off + k]! ** 2;
    const inv = ss > 0 ? 1 / Math.sqrt(ss) : 0;
    for (let k = 0; k < set.dim; k++) out[off + k] = set.data[off + k]! * inv;
  }
  return { n: set.n, dim: set.dim, data: out };
}

export function cosineSimilarity(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`cosineSimilarity: lengths differ (${a.length} vs ${b.length})`);
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let k = 0; k < a.length; k++) {
    dot += a[k]! * b[k]!;
    na += a[k]! ** 2;
    nb += b[k]! ** 2;
  }
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
}

/** Cosine similarity of each pair (i, j) of rows of `set`. */
export function pairSimilarities(
  set: EmbeddingSet,
  pairs: ReadonlyArray<readonly [number, number]>,
): Float64Array {
  const unit = l2NormalizeRows(set);
  const out = new Float64Array(pairs.length);
  pairs.forEach(([i, j], p) => {
    const a = row(unit, i);
    const b = row(unit, j);
    let dot = 0;
    for (let k = 0; k < set.dim; k++) dot += a[k]! * b[k]!;
    out[p] = dot;
  });
  return out;
}

/**
 * The "flip test" embedding: the sum of an image's embedding and its mirror's (insightface, spec §6).
 * Both sets hold the same images in the same order.
 */
export function sumWithMirror(plain: EmbeddingSet, mirrored: EmbeddingSet): EmbeddingSet {
  if (plain.n !== mirrored.n || plain.dim !== mirrored.dim) {
    throw new Error(
      `sumWithMirror: shapes differ (${plain.n}×${plain.dim} vs ${mirrored.n}×${mirrored.dim})`,
    );
  }
  const out = new Float32Array(plain.data.length);
  for (let k = 0; k < out.length; k++) out[k] = plain.data[k]! + mirrored.data[k]!;
  return { n: plain.n, dim: plain.dim, data: out };
}
