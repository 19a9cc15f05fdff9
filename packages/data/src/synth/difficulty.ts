import { join } from 'node:path';
import sharp from 'sharp';
import { Rng, hash32 } from '../rng.js';
import { identityTraits } from './traits.js';
import { renderFaceSvg, type Nuisance } from './render.js';
import { MAX_NEGATIVE_SKIN_TONE_GAP, MIN_POSITIVE_AGE_GAP, type SynthImage } from './synthesize.js';

/** Mean RMS pixel distance (0–255 scale) of two kinds of image pairs. */
export interface DifficultyStats {
  /** Same identity, ages ≥ 20 years apart. */
  sameIdentityCrossAge: number;
  /** Different identities of the same gender and similar skin tone (as negatives are drawn), ages ≤ 5 years apart. */
  differentIdentitySameAge: number;
  /** sameIdentityCrossAge / differentIdentitySameAge: > 1 means age moves pixels more than identity does. */
  ratio: number;
  pairs: number;
}

const NEUTRAL: Nuisance = {
  yaw: 0,
  roll: 0,
  scale: 1,
  dx: 0,
  dy: 0,
  lightAngle: 0,
  lightStrength: 0,
  exposure: 1,
  background: [
    [128, 128, 128],
    [128, 128, 128],
  ],
  clothing: [100, 100, 100],
  jpegQuality: 95,
  expression: 0,
};

function rms(a: Uint8Array, b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = (a[i] as number) - (b[i] as number);
    s += d * d;
  }
  return Math.sqrt(s / a.length);
}

async function raw(input: string | Buffer, size: number): Promise<Uint8Array> {
  return sharp(input).resize(size, size, { fit: 'fill' }).removeAlpha().raw().toBuffer();
}

async function measure(
  pairs: number,
  seed: number,
  draw: (rng: Rng, same: boolean) => [() => Promise<Uint8Array>, () => Promise<Uint8Array>] | null,
): Promise<DifficultyStats> {
  const rng = new Rng(hash32(seed, 0xd1f));
  const sums = [0, 0];
  const counts = [0, 0];
  for (const [k, same] of [true, false].entries()) {
    for (let attempt = 0; counts[k]! < pairs && attempt < pairs * 200; attempt++) {
      const p = draw(rng, same);
      if (p === null) continue;
      const [a, b] = await Promise.all([p[0](), p[1]()]);
      sums[k]! += rms(a, b);
      counts[k]!++;
    }
  }
  const sameIdentityCrossAge = sums[0]! / Math.max(1, counts[0]!);
  const differentIdentitySameAge = sums[1]! / Math.max(1, counts[1]!);
  return {
    sameIdentityCrossAge,
    differentIdentitySameAge,
    ratio: sameIdentityCrossAge / differentIdentitySameAge,
    pairs: Math.min(counts[0]!, counts[1]!),
  };
}

/** Measured on the generated files (nuisances included) of an annotation list. */
export async function datasetDifficulty(root: string, images: readonly SynthImage[], pairs = 500, seed = 0): Promise<DifficultyStats> {
  const byId = new Map<number, SynthImage[]>();
  for (const im of images) byId.set(im.id, [...(byId.get(im.id) ?? []), im]);
  const size = 64;
  return measure(pairs, seed, (rng, same) => {
    const x = rng.pick(images);
    const y = same ? rng.pick(byId.get(x.id) as SynthImage[]) : rng.pick(images);
    if (same ? Math.abs(x.age - y.age) < MIN_POSITIVE_AGE_GAP : x.id === y.id || x.gender !== y.gender || Math.abs(x.skinTone - y.skinTone) > MAX_NEGATIVE_SKIN_TONE_GAP || Math.abs(x.age - y.age) > 5) {
      return null;
    }
    return [() => raw(join(root, x.file), size), () => raw(join(root, y.file), size)];
  });
}

/** Measured on clean renders (no pose, light, background or clothing changes): face changes only. */
export async function generatorDifficulty(seed: number, identities = 200, pairs = 300, size = 64): Promise<DifficultyStats> {
  const render = (id: number, age: number) => async (): Promise<Uint8Array> => {
    const svg = renderFaceSvg(identityTraits(seed, id), age, NEUTRAL, new Rng(hash32(seed, id, age)), size);
    return raw(Buffer.from(svg), size);
  };
  return measure(pairs, seed, (rng, same) => {
    const i = rng.int(identities);
    const a = 1 + rng.int(80);
    if (same) {
      const b = 1 + rng.int(80);
      return Math.abs(a - b) < MIN_POSITIVE_AGE_GAP ? null : [render(i, a), render(i, b)];
    }
    const j = rng.int(identities);
    const b = Math.max(1, Math.min(80, a + rng.int(11) - 5));
    const [ti, tj] = [identityTraits(seed, i), identityTraits(seed, j)];
    if (i === j || ti.gender !== tj.gender || Math.abs(ti.skinTone - tj.skinTone) > MAX_NEGATIVE_SKIN_TONE_GAP) return null;
    return [render(i, a), render(j, b)];
  });
}
