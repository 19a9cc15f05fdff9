// Closed-set identification (MORPH, FG-NET; spec §6): each probe is ranked against a gallery by cosine
// similarity. The rank of a probe is 1 + the number of gallery entries of other identities that score
// strictly higher than its best-scoring mate; rank-k accuracy is the share of probes of rank ≤ k.
import { l2NormalizeRows, type EmbeddingSet } from './similarity.js';

export interface LabelledEmbeddings {
  readonly embeddings: EmbeddingSet;
  /** identity of each row */
  readonly labels: ArrayLike<number>;
}

export interface IdentificationResult {
  /** probes that have at least one mate in their gallery (the others are skipped, see `skipped`) */
  readonly probes: number;
  readonly skipped: number;
  /** accuracy at each asked rank, in the order asked */
  readonly rankK: Array<{ k: number; accuracy: number }>;
  readonly rank1: number;
  /** rank of each probe (0 for a skipped probe) */
  readonly ranks: Int32Array;
}

function checkSet(name: string, s: LabelledEmbeddings): void {
  if (s.labels.length !== s.embeddings.n) {
    throw new Error(`identification: ${name} has ${s.embeddings.n} embeddings but ${s.labels.length} labels`);
  }
}

function summarise(ranks: Int32Array, ks: number[]): IdentificationResult {
  let probes = 0;
  for (const r of ranks) if (r > 0) probes++;
  const rankK = ks.map((k) => {
    if (!Number.isInteger(k) || k < 1)
      throw new Error(`identification: rank k must be an integer ≥ 1, got ${k}`);
    let hit = 0;
    for (const r of ranks) if (r > 0 && r <= k) hit++;
    return { k, accuracy: probes > 0 ? hit / probes : NaN };
  });
  const at1 = ranks.reduce((a, r) => a + (r === 1 ? 1 : 0), 0);
  return { probes, skipped: ranks.length - probes, rankK, rank1: probes > 0 ? at1 / probes : NaN, ranks };
}

/**
 * Ranks every probe against the gallery. `exclude(p, g)` may drop gallery entries for a probe (used by
 * leave-one-out to drop the probe itself).
 */
function rankProbes(
  gallery: LabelledEmbeddings,
  probes: LabelledEmbeddings,
  exclude?: (p: number, g: number) => boolean,
): Int32Array {
  checkSet('the gallery', gallery);
  checkSet('the probe set', probes);
  if (gallery.embeddings.dim !== probes.embeddings.dim) {
    throw new Error(
      `identification: gallery embeddings are ${gallery.embeddings.dim}-d, probes ${probes.embeddings.dim}-d`,
    );
  }
  const g = l2NormalizeRows(gallery.embeddings);
  const p = l2NormalizeRows(probes.embeddings);
  const dim = g.dim;
  const ranks = new Int32Array(p.n);
  const scores = new Float64Array(g.n);
  for (let i = 0; i < p.n; i++) {
    const label = probes.labels[i]!;
    let mateBest = -Infinity;
    let hasMate = false;
    for (let j = 0; j < g.n; j++) {
      if (exclude?.(i, j)) {
        scores[j] = NaN;
        continue;
      }
      let dot = 0;
      for (let k = 0; k < dim; k++) dot += p.data[i * dim + k]! * g.data[j * dim + k]!;
      scores[j] = dot;
      if (gallery.labels[j] === label) {
        hasMate = true;
        if (dot > mateBest) mateBest = dot;
      }
    }
    if (!hasMate) continue;
    let above = 0;
    for (let j = 0; j < g.n; j++) if (gallery.labels[j] !== label && scores[j]! > mateBest) above++;
    ranks[i] = 1 + above;
  }
  return ranks;
}

/** Gallery/probe identification (e.g. MORPH: one image per identity in the gallery, the rest probes). */
export function identify(
  gallery: LabelledEmbeddings,
  probes: LabelledEmbeddings,
  ks: number[] = [1, 5, 10],
): IdentificationResult {
  return summarise(rankProbes(gallery, probes), ks);
}

/**
 * FG-NET leave-one-out: every image is a probe against all the other images (plus any `distractors`,
 * which should carry labels no probe has, as in the MegaFace protocol). Identities with a single image
 * have no mate and are skipped.
 */
export function leaveOneOut(
  set: LabelledEmbeddings,
  ks: number[] = [1, 5, 10],
  distractors?: LabelledEmbeddings,
): IdentificationResult {
  checkSet('the set', set);
  if (!distractors)
    return summarise(
      rankProbes(set, set, (p, g) => p === g),
      ks,
    );
  checkSet('the distractors', distractors);
  if (distractors.embeddings.dim !== set.embeddings.dim) {
    throw new Error(
      `identification: distractors are ${distractors.embeddings.dim}-d, the set ${set.embeddings.dim}-d`,
    );
  }
  const data = new Float32Array(set.embeddings.data.length + distractors.embeddings.data.length);
  data.set(set.embeddings.data);
  data.set(distractors.embeddings.data, set.embeddings.data.length);
  const labels = [...Array.from(set.labels), ...Array.from(distractors.labels)];
  const gallery: LabelledEmbeddings = {
    embeddings: { n: set.embeddings.n + distractors.embeddings.n, dim: set.embeddings.dim, data },
    labels,
  };
  return summarise(
    rankProbes(gallery, set, (p, g) => p === g),
    ks,
  );
}
