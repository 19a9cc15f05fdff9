/** Age-group thresholds of the spec (mtlface-model.md §1): group = number of thresholds t with age > t. */
export const AGE_GROUP_THRESHOLDS: Readonly<Record<AgeGroupCount, readonly number[]>> = {
  4: [30, 40, 50],
  5: [20, 30, 40, 50],
  6: [10, 20, 30, 40, 50],
  7: [10, 20, 30, 40, 50, 60],
  8: [12, 18, 25, 35, 45, 55, 65],
};

export type AgeGroupCount = 4 | 5 | 6 | 7 | 8;

export function isAgeGroupCount(n: number): n is AgeGroupCount {
  return n === 4 || n === 5 || n === 6 || n === 7 || n === 8;
}

/**
 * The age group of a face of age `age` when there are `groups` groups.
 *   ageGroup(10, 7) === 0; ageGroup(10.5, 7) === 1; ageGroup(61, 7) === 6
 */
export function ageGroup(age: number, groups: AgeGroupCount = 7): number {
  const thresholds = AGE_GROUP_THRESHOLDS[groups];
  if (thresholds === undefined) throw new RangeError(`ageGroup: groups must be 4..8, got ${String(groups)}`);
  if (!Number.isFinite(age)) throw new RangeError(`ageGroup: age must be a finite number, got ${age}`);
  let g = 0;
  for (const t of thresholds) if (age > t) g++;
  return g;
}
