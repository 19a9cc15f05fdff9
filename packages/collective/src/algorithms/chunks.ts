/** Rank i's chunk of `count` elements split over `size` ranks: [start, end). Sizes differ by at most one. */
export function chunkStart(count: number, size: number, i: number): number {
  return Math.floor((i * count) / size);
}

export function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}
