// Least-squares similarity transform (Umeyama 1991) between 2-D point sets, and the insightface 112×112
// five-point template faces are aligned to. Pure: no tfjs.

export type Point = readonly [number, number];

/** x' = a·x − b·y + tx, y' = b·x + a·y + ty (rotation by atan2(b, a), scale hypot(a, b)). */
export interface SimilarityTransform {
  readonly a: number;
  readonly b: number;
  readonly tx: number;
  readonly ty: number;
}

/**
 * The insightface (arcface) template for 112×112 crops: the eye on the image's left, the other eye, nose
 * tip, left and right mouth corners.
 */
export const ARCFACE_TEMPLATE_112: readonly Point[] = [
  [38.2946, 51.6963],
  [73.5318, 51.5014],
  [56.0252, 71.7366],
  [41.5493, 92.3655],
  [70.7299, 92.2041],
];

/** The template for a square crop of another side (scaled; insightface does the same for 128 etc.). */
export function templateForSize(size: number): Point[] {
  return ARCFACE_TEMPLATE_112.map(([x, y]) => [(x * size) / 112, (y * size) / 112]);
}

export function applyTransform(t: SimilarityTransform, [x, y]: Point): Point {
  return [t.a * x - t.b * y + t.tx, t.b * x + t.a * y + t.ty];
}

export function invertTransform(t: SimilarityTransform): SimilarityTransform {
  const d = t.a * t.a + t.b * t.b;
  if (!(d > 0)) throw new Error('invertTransform: the transform is degenerate (scale 0)');
  const a = t.a / d;
  const b = -t.b / d;
  return { a, b, tx: -(a * t.tx - b * t.ty), ty: -(b * t.tx + a * t.ty) };
}

/**
 * The similarity transform (rotation, uniform scale, translation; no reflection) that maps `src` onto
 * `dst` with the least sum of squared errors: Umeyama's closed form, which in 2-D reduces to
 * a = Σ(x̃·u + ỹ·v)/Σ|p̃|², b = Σ(x̃·v − ỹ·u)/Σ|p̃|² over centred points.
 */
export function estimateSimilarity(src: readonly Point[], dst: readonly Point[]): SimilarityTransform {
  if (src.length !== dst.length)
    throw new Error(`estimateSimilarity: ${src.length} source points but ${dst.length} targets`);
  if (src.length < 2) throw new Error(`estimateSimilarity: need at least 2 points, got ${src.length}`);
  const n = src.length;
  let sx = 0,
    sy = 0,
    dx = 0,
    dy = 0;
  for (let i = 0; i < n; i++) {
    sx += src[i]![0];
    sy += src[i]![1];
    dx += dst[i]![0];
    dy += dst[i]![1];
  }
  sx /= n;
  sy /= n;
  dx /= n;
  dy /= n;
  let num1 = 0,
    num2 = 0,
    den = 0;
  for (let i = 0; i < n; i++) {
    const x = src[i]![0] - sx;
    const y = src[i]![1] - sy;
    const u = dst[i]![0] - dx;
    const v = dst[i]![1] - dy;
    num1 += x * u + y * v;
    num2 += x * v - y * u;
    den += x * x + y * y;
  }
  if (!(den > 0)) throw new Error('estimateSimilarity: the source points all coincide');
  const a = num1 / den;
  const b = num2 / den;
  return { a, b, tx: dx - (a * sx - b * sy), ty: dy - (b * sx + a * sy) };
}

/**
 * Warps an interleaved RGB(A) image into an out×out crop: each output pixel centre is mapped back through
 * the inverse of `t` (source → crop) and sampled bilinearly; outside the source is black.
 */
export function warpAffine(
  src: Uint8Array,
  width: number,
  height: number,
  channels: number,
  t: SimilarityTransform,
  out: number,
): Uint8Array {
  const inv = invertTransform(t);
  const dst = new Uint8Array(out * out * 3);
  for (let y = 0; y < out; y++) {
    for (let x = 0; x < out; x++) {
      const [fx, fy] = applyTransform(inv, [x, y]);
      const x0 = Math.floor(fx);
      const y0 = Math.floor(fy);
      const wx = fx - x0;
      const wy = fy - y0;
      for (let c = 0; c < 3; c++) {
        let acc = 0;
        for (const [px, py, w] of [
          [x0, y0, (1 - wx) * (1 - wy)],
          [x0 + 1, y0, wx * (1 - wy)],
          [x0, y0 + 1, (1 - wx) * wy],
          [x0 + 1, y0 + 1, wx * wy],
        ] as const) {
          if (w === 0 || px < 0 || py < 0 || px >= width || py >= height) continue;
          acc += w * src[(py * width + px) * channels + Math.min(c, channels - 1)]!;
        }
        dst[(y * out + x) * 3 + c] = Math.round(acc);
      }
    }
  }
  return dst;
}
