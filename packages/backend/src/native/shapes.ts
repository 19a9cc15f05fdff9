// Shape arithmetic for the addon's element-wise kernels: merge dims so the
// C++ loops see as few, as long contiguous runs as possible.

/**
 * Collapsed geometry of a broadcasting binary op, as the addon takes it:
 * [rank, dims..., aStrides..., bStrides...] (element strides, 0 = broadcast).
 */
export function broadcastGeometry(
  aShape: readonly number[],
  bShape: readonly number[],
  outShape: readonly number[],
): Int32Array {
  const r = outShape.length;
  const pad = (s: readonly number[]) => [...Array<number>(r - s.length).fill(1), ...s];
  const as = pad(aShape);
  const bs = pad(bShape);
  const strides = (s: number[]) => {
    const st = new Array<number>(r).fill(0);
    let acc = 1;
    for (let d = r - 1; d >= 0; d--) {
      st[d] = s[d] === 1 && outShape[d] !== 1 ? 0 : acc;
      acc *= s[d]!;
    }
    return st;
  };
  const sa = strides(as);
  const sb = strides(bs);
  const dims: number[] = [];
  const ga: number[] = [];
  const gb: number[] = [];
  for (let d = 0; d < r; d++) {
    const n = outShape[d]!;
    if (n === 1) continue;
    const last = dims.length - 1;
    // Merge into the previous dim when both operands continue it seamlessly.
    if (last >= 0 && ga[last] === sa[d]! * n && gb[last] === sb[d]! * n) {
      dims[last] = dims[last]! * n;
      ga[last] = sa[d]!;
      gb[last] = sb[d]!;
    } else {
      dims.push(n);
      ga.push(sa[d]!);
      gb.push(sb[d]!);
    }
  }
  if (dims.length === 0) return Int32Array.of(1, 1, 1, 1);
  return Int32Array.from([dims.length, ...dims, ...ga, ...gb]);
}

/**
 * A reduction over `axes` as out[o, i] = reduce_r x[o, r, i], or null when
 * the reduced axes do not form one contiguous block after dropping size-1 dims.
 */
export function reductionGeometry(
  shape: readonly number[],
  axes: readonly number[],
): { outer: number; n: number; inner: number } | null {
  const reduced = new Set(axes);
  const runs: { reduce: boolean; size: number }[] = [];
  for (let d = 0; d < shape.length; d++) {
    const size = shape[d]!;
    if (size === 1) continue;
    const reduce = reduced.has(d);
    const last = runs[runs.length - 1];
    if (last && last.reduce === reduce) last.size *= size;
    else runs.push({ reduce, size });
  }
  const reduceRuns = runs.filter((r) => r.reduce).length;
  if (reduceRuns > 1) return null;
  let outer = 1;
  let n = 1;
  let inner = 1;
  let seen = false;
  for (const run of runs) {
    if (run.reduce) {
      n = run.size;
      seen = true;
    } else if (seen) inner *= run.size;
    else outer *= run.size;
  }
  return { outer, n, inner };
}

/** Row-major element strides of a shape. */
export function stridesOf(shape: readonly number[]): number[] {
  const st = new Array<number>(shape.length).fill(1);
  for (let d = shape.length - 2; d >= 0; d--) st[d] = st[d + 1]! * shape[d + 1]!;
  return st;
}

/**
 * The addon's strided-copy geometry [rank, dims..., srcStrides..., dstStrides...,
 * srcOffset, dstOffset], with size-1 dims dropped and seamless neighbours merged.
 */
export function copyGeometry(
  dims: readonly number[],
  src: readonly number[],
  dst: readonly number[],
  srcOffset: number,
  dstOffset: number,
): Int32Array {
  const d: number[] = [];
  const s: number[] = [];
  const t: number[] = [];
  for (let i = 0; i < dims.length; i++) {
    const n = dims[i]!;
    if (n === 1) continue;
    const last = d.length - 1;
    if (last >= 0 && s[last] === src[i]! * n && t[last] === dst[i]! * n) {
      d[last] = d[last]! * n;
      s[last] = src[i]!;
      t[last] = dst[i]!;
    } else {
      d.push(n);
      s.push(src[i]!);
      t.push(dst[i]!);
    }
  }
  if (d.length === 0) return Int32Array.of(1, 1, 1, 1, srcOffset, dstOffset);
  return Int32Array.from([d.length, ...d, ...s, ...t, srcOffset, dstOffset]);
}
