import { availableParallelism } from 'node:os';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Piscina } from 'piscina';
import { Rng, hash32, permutation } from '../rng.js';
import { identityTraits } from './traits.js';
import type { SynthTask } from './synth-worker.js';
import type { AgeCues } from './render.js';

const WORKER = new URL(`./synth-worker.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url).href;

export interface SynthOptions {
  out: string;
  identities: number;
  imagesPerIdentity: number;
  /** Image side in pixels. */
  size: number;
  seed: number;
  /** Fraction of identities held out for test.txt / pairs.txt (default 0.2). */
  testFraction?: number;
  /** Verification pairs to write, half positive half negative (default min(3000, what the test set allows)). */
  pairs?: number;
  /** How the skin cues of ageing are drawn (default 'demo': the demo's set, unchanged). */
  ageCues?: AgeCues;
  /** Worker threads (default: available cores). */
  threads?: number;
  onProgress?: (doneIdentities: number, totalIdentities: number) => void;
}

export interface SynthImage {
  id: number;
  file: string;
  age: number;
  gender: number;
  /** Skin tone of the identity (0–6), used to match negatives as CALFW matches race. */
  skinTone: number;
}

/** Negatives are drawn between identities whose skin tones differ by at most this (CALFW: same race). */
export const MAX_NEGATIVE_SKIN_TONE_GAP = 1;

export interface SynthResult {
  images: number;
  trainImages: number;
  testImages: number;
  trainIdentities: number;
  testIdentities: number;
  positivePairs: number;
  negativePairs: number;
  bytes: number;
  elapsedMs: number;
}

/**
 * The 64 px cross-age benchmark of packages/eval/EXPERIMENTS.md (issue 19), fixed before any model was
 * trained on it: 240 identities × 16 images (ages stratified over 1–80, one per 5-year slice), 48
 * identities (20 %) held out for test.txt and 1200 CALFW-style pairs (600 same-person ≥ 20 years apart,
 * 600 different-person of the same gender and similar skin tone), per-image nuisances as drawn by
 * drawNuisance (pose, framing, light, background, clothing, expression, JPEG quality), skin cues of
 * ageing drawn 'visible'. `mtl-data synth --preset bench64 --out DIR` renders it.
 */
export const BENCH64 = {
  identities: 240,
  imagesPerIdentity: 16,
  size: 64,
  seed: 0,
  testFraction: 0.2,
  pairs: 1200,
  ageCues: 'visible',
} as const satisfies Omit<SynthOptions, 'out'>;

/** Minimum age gap of a positive verification pair (CALFW-style cross-age pairs). */
export const MIN_POSITIVE_AGE_GAP = 20;

/**
 * Ages of the images of one identity: stratified over 1..80 (one draw per equal slice, then
 * shuffled) so every identity spans childhood to old age and positive pairs with large gaps exist.
 */
export function identityAges(seed: number, id: number, m: number): number[] {
  const rng = new Rng(hash32(seed, id, 0xa6e));
  const ages = Array.from({ length: m }, (_, j) => Math.min(80, 1 + Math.floor(((j + rng.next()) * 80) / m)));
  const order = permutation(m, hash32(seed, id, 0x5f));
  return Array.from(order, (j) => ages[j] as number);
}

/** The image list of the synthetic set (pure: what `synthesize` writes, without rendering). */
export function synthImages(seed: number, identities: number, m: number): SynthImage[] {
  const out: SynthImage[] = [];
  for (let id = 0; id < identities; id++) {
    const { gender, skinTone } = identityTraits(seed, id);
    identityAges(seed, id, m).forEach((age, k) => {
      out.push({ id, file: `images/${String(id).padStart(5, '0')}/${String(k).padStart(3, '0')}.jpg`, age, gender, skinTone });
    });
  }
  return out;
}

/** Test identities: a seeded subset of round(N·fraction) ids (at least 2 when N ≥ 4, so pairs can exist). */
export function testIdentities(seed: number, identities: number, fraction: number): Set<number> {
  let k = Math.round(identities * fraction);
  if (identities >= 4) k = Math.max(2, k);
  k = Math.min(k, identities - 1);
  return new Set(Array.from(permutation(identities, hash32(seed, 0x7e57)).subarray(0, Math.max(0, k))));
}

/**
 * CALFW-style pairs over `images`: positives are two images of one identity at least
 * MIN_POSITIVE_AGE_GAP years apart; negatives are two identities of the same gender and a similar skin
 * tone (CALFW keeps gender and race equal so negatives are hard). No pair twice; positives and
 * negatives alternate, as many of each.
 */
export function crossAgePairs(
  images: readonly SynthImage[],
  count: number,
  seed: number,
): { a: string; b: string; same: boolean }[] {
  const rng = new Rng(hash32(seed, 0x9a1));
  const byId = new Map<number, SynthImage[]>();
  for (const im of images) byId.set(im.id, [...(byId.get(im.id) ?? []), im]);
  const ids = [...byId.keys()];
  const first = (id: number): SynthImage => (byId.get(id) as SynthImage[])[0] as SynthImage;
  const seen = new Set<string>();
  const half = Math.floor(count / 2);
  const add = (out: { a: string; b: string; same: boolean }[], x: SynthImage, y: SynthImage, same: boolean): boolean => {
    const key = x.file < y.file ? `${x.file} ${y.file}` : `${y.file} ${x.file}`;
    if (seen.has(key)) return false;
    seen.add(key);
    out.push({ a: x.file, b: y.file, same });
    return true;
  };
  const positives: { a: string; b: string; same: boolean }[] = [];
  for (let attempt = 0; ids.length > 0 && positives.length < half && attempt < half * 50; attempt++) {
    const list = byId.get(rng.pick(ids)) as SynthImage[];
    const x = rng.pick(list);
    const y = rng.pick(list);
    if (Math.abs(x.age - y.age) >= MIN_POSITIVE_AGE_GAP) add(positives, x, y, true);
  }
  // Negatives: same gender and similar skin tone; a test set too small for that falls back to
  // same gender, then to any two identities, rather than writing fewer negatives than positives.
  const negatives: { a: string; b: string; same: boolean }[] = [];
  const tiers = [
    (i: number, j: number) => first(i).gender === first(j).gender && Math.abs(first(i).skinTone - first(j).skinTone) <= MAX_NEGATIVE_SKIN_TONE_GAP,
    (i: number, j: number) => first(i).gender === first(j).gender,
    () => true,
  ];
  for (const ok of tiers) {
    for (let attempt = 0; ids.length > 1 && negatives.length < positives.length && attempt < half * 50; attempt++) {
      const i = rng.pick(ids);
      const j = rng.pick(ids);
      if (i !== j && ok(i, j)) add(negatives, rng.pick(byId.get(i) as SynthImage[]), rng.pick(byId.get(j) as SynthImage[]), false);
    }
  }
  // Interleaved, so that any run of consecutive pairs (a verification fold) is balanced.
  const pairs: { a: string; b: string; same: boolean }[] = [];
  for (let k = 0; k < Math.max(positives.length, negatives.length); k++) {
    if (k < positives.length) pairs.push(positives[k] as { a: string; b: string; same: boolean });
    if (k < negatives.length) pairs.push(negatives[k] as { a: string; b: string; same: boolean });
  }
  return pairs;
}

const line = (im: SynthImage): string => `${im.id} ${im.file} ${im.age} ${im.gender}`;

/**
 * Renders the synthetic cross-age face set into `out`:
 *   images/<id:5>/<k:3>.jpg, all.txt, train.txt, test.txt (annotation lists `id file age gender`),
 *   pairs.txt (`fileA fileB 1|-1`, test identities only), meta.json (options and counts).
 * Byte-identical output for the same options (any thread count).
 */
export async function synthesize(opts: SynthOptions): Promise<SynthResult> {
  const t0 = performance.now();
  const { out, identities, imagesPerIdentity: m, size, seed } = opts;
  for (const [k, v] of Object.entries({ identities, imagesPerIdentity: m, size, seed })) {
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`synthesize: ${k} must be a non-negative integer, got ${v}`);
  }
  if (identities < 2) throw new RangeError(`synthesize: identities must be ≥ 2, got ${identities}`);
  if (m < 2) throw new RangeError(`synthesize: imagesPerIdentity must be ≥ 2, got ${m}`);
  if (size < 16 || size > 1024) throw new RangeError(`synthesize: size must be in 16..1024, got ${size}`);
  const images = synthImages(seed, identities, m);
  const test = testIdentities(seed, identities, opts.testFraction ?? 0.2);
  const testImages = images.filter((im) => test.has(im.id));
  const trainImages = images.filter((im) => !test.has(im.id));
  const pairs = crossAgePairs(testImages, opts.pairs ?? 3000, seed);

  await mkdir(join(out, 'images'), { recursive: true });
  const threads = Math.max(1, opts.threads ?? availableParallelism());
  const pool = new Piscina<SynthTask, number>({ filename: WORKER, minThreads: threads, maxThreads: threads });
  let bytes = 0;
  let done = 0;
  try {
    const tasks: Promise<void>[] = [];
    for (let id = 0; id < identities; id++) {
      const items = images.slice(id * m, (id + 1) * m).map((im, index) => ({ file: im.file, age: im.age, index }));
      tasks.push(
        pool.run({ seed, size, out, identity: id, items, ageCues: opts.ageCues ?? 'demo' }).then((b) => {
          bytes += b;
          opts.onProgress?.(++done, identities);
        }),
      );
    }
    await Promise.all(tasks);
  } finally {
    await pool.destroy();
  }
  const listText = (xs: SynthImage[]): string => xs.map(line).join('\n') + '\n';
  await writeFile(join(out, 'all.txt'), listText(images));
  await writeFile(join(out, 'train.txt'), listText(trainImages));
  await writeFile(join(out, 'test.txt'), listText(testImages));
  await writeFile(join(out, 'pairs.txt'), pairs.map((p) => `${p.a} ${p.b} ${p.same ? 1 : -1}\n`).join(''));
  const result: SynthResult = {
    images: images.length,
    trainImages: trainImages.length,
    testImages: testImages.length,
    trainIdentities: identities - test.size,
    testIdentities: test.size,
    positivePairs: pairs.filter((p) => p.same).length,
    negativePairs: pairs.filter((p) => !p.same).length,
    bytes,
    elapsedMs: performance.now() - t0,
  };
  const meta = {
    generator: 'mtlface synthetic cross-age faces v1',
    // ageCues only when not the default, so the demo's meta.json stays byte-identical.
    options: {
      identities,
      imagesPerIdentity: m,
      size,
      seed,
      testFraction: opts.testFraction ?? 0.2,
      pairs: opts.pairs ?? 3000,
      ...(opts.ageCues !== undefined && opts.ageCues !== 'demo' ? { ageCues: opts.ageCues } : {}),
    },
    counts: { ...result, elapsedMs: undefined },
    minPositiveAgeGap: MIN_POSITIVE_AGE_GAP,
    files: { all: 'all.txt', train: 'train.txt', test: 'test.txt', pairs: 'pairs.txt', images: 'images/<id:5>/<k:3>.jpg' },
  };
  await writeFile(join(out, 'meta.json'), JSON.stringify(meta, null, 2) + '\n');
  return result;
}
