import { Rng, hash32 } from './rng.js';

export interface FasTargets {
  /** Target age group per sample, uniform over the groups. */
  targetGroups: Int32Array;
  /** Dataset index of a real image whose group equals the target, per sample. */
  realIndices: Int32Array;
}

/**
 * FAS target sampler (mtlface-model.md §4 step 4): for every sample a target group drawn uniformly
 * from 0..G−1 and a uniformly drawn training image of that group. Deterministic in (seed, iteration),
 * so a resumed run draws the same targets.
 */
export class FasTargetSampler {
  readonly numGroups: number;
  private readonly byGroup: Int32Array[];
  private readonly drawable: number[];

  /**
   * @param groups age group of every dataset sample
   * @param numGroups G
   * @param opts.skipEmptyGroups draw only among groups that have images (default: an empty group is an error)
   */
  constructor(
    groups: Int32Array,
    numGroups: number,
    private readonly seed: number,
    opts: { skipEmptyGroups?: boolean } = {},
  ) {
    this.numGroups = numGroups;
    const lists: number[][] = Array.from({ length: numGroups }, () => []);
    groups.forEach((g, i) => {
      const list = lists[g];
      if (list === undefined) throw new RangeError(`FasTargetSampler: sample ${i} has group ${g}, outside 0..${numGroups - 1}`);
      list.push(i);
    });
    this.byGroup = lists.map((l) => Int32Array.from(l));
    const empty = lists.flatMap((l, g) => (l.length === 0 ? [g] : []));
    if (empty.length > 0 && !opts.skipEmptyGroups) {
      throw new Error(`FasTargetSampler: age group(s) ${empty.join(', ')} have no images; FAS needs real images of every target group`);
    }
    this.drawable = lists.flatMap((l, g) => (l.length > 0 ? [g] : []));
    if (this.drawable.length === 0) throw new Error('FasTargetSampler: no images');
  }

  /** Images available in group g. */
  groupSize(g: number): number {
    return this.byGroup[g]?.length ?? 0;
  }

  /** Targets for `n` samples of iteration `iteration` on `rank`. */
  sample(n: number, iteration: number, rank = 0): FasTargets {
    const rng = new Rng(hash32(this.seed, iteration, rank, 0xfa5));
    const targetGroups = new Int32Array(n);
    const realIndices = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const g = this.drawable[rng.int(this.drawable.length)] as number;
      const members = this.byGroup[g] as Int32Array;
      targetGroups[i] = g;
      realIndices[i] = members[rng.int(members.length)] as number;
    }
    return { targetGroups, realIndices };
  }
}
