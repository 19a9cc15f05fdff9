/**
 * A batch as the trainer consumes it (DESIGN.md contract): `n` images of `size`×`size` RGB,
 * NHWC float32 in [-1, 1], and one label, age, age group and gender per image.
 */
export interface Batch {
  n: number;
  size: number;
  /** n·size·size·3 values, NHWC, in [-1, 1]. */
  images: Float32Array;
  /** Identity labels remapped to 0..C−1. */
  labels: Int32Array;
  ages: Float32Array;
  groups: Int32Array;
  /** 1 male, 0 female. */
  genders: Int32Array;
}

/** A batch plus what the FAS step needs: a target group per sample and a real image of that group. */
export interface FasBatch extends Batch {
  targetGroups: Int32Array;
  /** Real training images whose true group equals `targetGroups[i]` (same order). */
  real: Batch;
}
