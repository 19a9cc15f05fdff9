import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import {
  BENCH64,
  MIN_CUE_PX,
  MAX_NEGATIVE_SKIN_TONE_GAP,
  MIN_POSITIVE_AGE_GAP,
  crossAgePairs,
  drawNuisance,
  identityTraits,
  renderFaceSvg,
  Rng,
  parseAnnotations,
  synthImages,
  synthesize,
  testIdentities,
  hash32,
} from '../src/index.js';

async function digestTree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const p = join(e.parentPath, e.name);
    out.set(p.slice(dir.length), createHash('sha256').update(await readFile(p)).digest('hex'));
  }
  return out;
}

test('synth is byte-identical for a seed (whatever the thread count) and differs for another seed', async () => {
  const base = await mkdtemp(join(tmpdir(), 'mtl-synth-'));
  const opts = { identities: 6, imagesPerIdentity: 4, size: 32, seed: 5, pairs: 20 };
  await synthesize({ ...opts, out: join(base, 'a'), threads: 1 });
  await synthesize({ ...opts, out: join(base, 'b'), threads: 2 });
  await synthesize({ ...opts, seed: 6, out: join(base, 'c'), threads: 2 });
  const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((d) => digestTree(join(base, d))));
  assert.equal(a!.size, 6 * 4 + 5); // images + all/train/test/pairs/meta
  assert.deepEqual(a, b);
  assert.notEqual(a!.get('/all.txt'), c!.get('/all.txt'));
  assert.notEqual(a!.get('/images/00000/000.jpg'), c!.get('/images/00000/000.jpg'));
  const meta = await sharp(join(base, 'a', 'images', '00003', '002.jpg')).metadata();
  assert.equal(meta.format, 'jpeg');
  assert.equal(meta.width, 32);
  assert.equal(meta.height, 32);
});

test('synth lists: ages spread over 1–80 per identity, split identity-disjoint, lists parse', async () => {
  const out = await mkdtemp(join(tmpdir(), 'mtl-synth-'));
  const r = await synthesize({ out, identities: 10, imagesPerIdentity: 8, size: 24, seed: 2, threads: 2 });
  const all = parseAnnotations(await readFile(join(out, 'all.txt'), 'utf8'), 'all.txt');
  const train = parseAnnotations(await readFile(join(out, 'train.txt'), 'utf8'), 'train.txt');
  const test = parseAnnotations(await readFile(join(out, 'test.txt'), 'utf8'), 'test.txt');
  assert.equal(all.length, 80);
  assert.equal(train.length + test.length, 80);
  assert.equal(r.testIdentities, 2);
  const trainIds = new Set(train.map((e) => e.id));
  assert.ok(test.every((e) => !trainIds.has(e.id)));
  for (let id = 0; id < 10; id++) {
    const ages = all.filter((e) => e.id === id).map((e) => e.age).sort((x, y) => x - y);
    assert.equal(ages.length, 8);
    // stratified: one age in each tenth-of-80 slice
    ages.forEach((a, j) => assert.ok(a >= 1 + Math.floor((j * 80) / 8) && a <= Math.min(80, 1 + Math.floor(((j + 1) * 80) / 8)), `${id}: ${ages}`));
    assert.ok(all.filter((e) => e.id === id).every((e) => e.gender === identityTraits(2, id).gender));
  }
});

test('pairs: positives ≥ 20 years apart, negatives same gender and similar skin tone, no duplicates', () => {
  const images = synthImages(9, 60, 12);
  const pairs = crossAgePairs(images, 600, 9);
  const byFile = new Map(images.map((im) => [im.file, im]));
  assert.equal(pairs.filter((p) => p.same).length, 300);
  assert.equal(pairs.filter((p) => !p.same).length, 300);
  const keys = new Set<string>();
  for (const p of pairs) {
    const a = byFile.get(p.a)!;
    const b = byFile.get(p.b)!;
    keys.add([p.a, p.b].sort().join(' '));
    if (p.same) {
      assert.equal(a.id, b.id);
      assert.ok(Math.abs(a.age - b.age) >= MIN_POSITIVE_AGE_GAP);
    } else {
      assert.notEqual(a.id, b.id);
      assert.equal(a.gender, b.gender);
      assert.ok(Math.abs(a.skinTone - b.skinTone) <= MAX_NEGATIVE_SKIN_TONE_GAP);
    }
  }
  assert.equal(keys.size, pairs.length);
  // Alternating, so every fold of consecutive pairs is balanced.
  pairs.forEach((p, k) => assert.equal(p.same, k % 2 === 0));
  // Ages overall cover childhood to old age evenly.
  const hist = new Array(8).fill(0);
  for (const im of images) hist[Math.min(7, Math.floor((im.age - 1) / 10))]++;
  for (const h of hist) assert.ok(h > images.length / 8 - 30 && h < images.length / 8 + 30, `${hist}`);
});

test('the pairs file written by synth has the documented format', async () => {
  const out = await mkdtemp(join(tmpdir(), 'mtl-synth-'));
  await synthesize({ out, identities: 12, imagesPerIdentity: 6, size: 16, seed: 3, pairs: 30, threads: 1 });
  const lines = (await readFile(join(out, 'pairs.txt'), 'utf8')).trimEnd().split('\n');
  assert.ok(lines.length > 0);
  for (const l of lines) assert.match(l, /^images\/\d{5}\/\d{3}\.jpg images\/\d{5}\/\d{3}\.jpg (1|-1)$/);
  // Even this small test set (2 identities) gets as many negatives as positives.
  assert.equal(lines.filter((l) => l.endsWith(' 1')).length, lines.filter((l) => l.endsWith('-1')).length);
});

test('identity traits are persistent and not all identities share a value of any one trait', () => {
  assert.deepEqual(identityTraits(4, 17), identityTraits(4, 17));
  const ts = Array.from({ length: 50 }, (_, i) => identityTraits(4, i));
  for (const k of ['faceWidth', 'eyeSpacing', 'noseWidth', 'mouthWidth', 'skinTone', 'greyOnset'] as const) {
    assert.ok(new Set(ts.map((t) => t[k])).size > 40, k);
  }
  assert.ok(new Set(ts.map((t) => t.hairStyle)).size >= 4);
});

test('the renderer draws the ageing cues it is built on, read from its SVG rather than pixel hashes', () => {
  // One identity under one nuisance at two ages: the same random streams, only the age differs.
  const render = (id: number, age: number): string => {
    const rng = new Rng(1000 + id);
    return renderFaceSvg(identityTraits(9, id), age, drawNuisance(rng), rng, 64);
  };
  const spots = (svg: string): number => (svg.match(/fill="rgb\(120,80,50\)"/g) ?? []).length;
  // The brows are drawn in the hair colour (greying with it): the first round, unfilled stroke.
  const brow = (svg: string): number[] => {
    const m = /stroke="rgb\((\d+),(\d+),(\d+)\)" stroke-width="[\d.]+" stroke-linecap="round" fill="none"/.exec(svg);
    assert.ok(m, 'a brow stroke in the SVG');
    return [Number(m[1]), Number(m[2]), Number(m[3])];
  };
  let greyed = 0;
  for (let id = 0; id < 12; id++) {
    const t = identityTraits(9, id);
    const [young, mid, old] = [render(id, 25), render(id, 50), render(id, 80)];
    assert.equal(spots(young), 0, `identity ${id}: no age spots at 25`);
    assert.equal(spots(mid), 0, `identity ${id}: no age spots at 50`);
    if (t.ageingRate >= 0.2) assert.ok(spots(old) > 0, `identity ${id}: age spots at 80`);
    // Hair (and brows) move toward grey (212, 212, 208) between 25 and 80: every identity's onset is
    // before 57, so at 80 the grey is well under way.
    const toGrey = [212 - t.hair[0], 212 - t.hair[1], 208 - t.hair[2]];
    const moved = brow(old).map((v, k) => v - brow(young)[k]!);
    const along = moved.reduce((a, v, k) => a + v * toGrey[k]!, 0);
    if (Math.hypot(...toGrey) > 40) {
      assert.ok(along > 0, `identity ${id}: brows from ${brow(young)} to ${brow(old)}, hair ${t.hair}`);
      greyed++;
    }
  }
  assert.ok(greyed >= 6, `only ${greyed} of 12 identities have hair far enough from grey to check`);
});

test("the demo's 32 px set is unchanged: the renderer's SVG for all 1440 images hashes as before the 64 px preset", () => {
  // The demo's set (npm run demo: seed 0, 120 identities × 12 images, 32 px) drawn image by image exactly as
  // the synth worker draws it. The expected hash is the one the renderer gave at commit ab9c5d5, before the
  // 'visible' age cues existed; the demo's documented results depend on these images.
  const h = createHash('sha256');
  for (const im of synthImages(0, 120, 12)) {
    const rng = new Rng(hash32(0, im.id, Number(im.file.slice(-7, -4)), 0x1a6e));
    const nz = drawNuisance(rng);
    h.update(renderFaceSvg(identityTraits(0, im.id), im.age, nz, rng, 32));
  }
  assert.equal(h.digest('hex'), 'fd34cfb45c39b9076e81f0a5657d47c8ec49d231fa6cb6a7aaf0d5ead618fa40');
});

test("synth without ageCues writes what ageCues 'demo' writes, and no ageCues key in meta.json", async () => {
  const base = await mkdtemp(join(tmpdir(), 'mtl-synth-'));
  const opts = { identities: 3, imagesPerIdentity: 3, size: 32, seed: 2, pairs: 6, threads: 1 };
  await synthesize({ ...opts, out: join(base, 'a') });
  await synthesize({ ...opts, ageCues: 'demo', out: join(base, 'b') });
  await synthesize({ ...opts, ageCues: 'visible', out: join(base, 'c') });
  const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((d) => digestTree(join(base, d))));
  assert.deepEqual(a, b);
  assert.ok(!('ageCues' in JSON.parse(await readFile(join(base, 'a', 'meta.json'), 'utf8')).options));
  assert.equal(JSON.parse(await readFile(join(base, 'c', 'meta.json'), 'utf8')).options.ageCues, 'visible');
  assert.equal(a!.get('/all.txt'), c!.get('/all.txt'), 'the cues change pixels, not the lists');
});

test('bench64: the parameters EXPERIMENTS.md states are the ones BENCH64 renders', async () => {
  const doc = await readFile(new URL('../../eval/EXPERIMENTS.md', import.meta.url), 'utf8');
  const row = (name: string): string => {
    const m = new RegExp(`^\\| ${name} +\\| (.*?) +\\|$`, 'm').exec(doc);
    assert.ok(m, `EXPERIMENTS.md has a "${name}" row`);
    return m[1]!;
  };
  const ints = (s: string): number[] => (s.match(/\d+/g) ?? []).map(Number);
  const [ids, seed, train, held] = ints(row('identities'));
  const [per] = ints(row('images per identity'));
  const [pairs, pos, , neg] = ints(row('pairs \\(held out\\)'));
  assert.deepEqual(
    { identities: BENCH64.identities, seed: BENCH64.seed, imagesPerIdentity: BENCH64.imagesPerIdentity, pairs: BENCH64.pairs },
    { identities: ids, seed, imagesPerIdentity: per, pairs },
  );
  assert.deepEqual(ints(row('image size')).slice(0, 2), [BENCH64.size, BENCH64.size]);
  assert.ok(row('age cues').startsWith(`\`'${BENCH64.ageCues}'\``));
  // The split and the pairs, from the pure functions synthesize uses (no rendering).
  const images = synthImages(BENCH64.seed, BENCH64.identities, BENCH64.imagesPerIdentity);
  const test = testIdentities(BENCH64.seed, BENCH64.identities, BENCH64.testFraction);
  assert.equal(test.size, held);
  assert.equal(BENCH64.identities - test.size, train);
  const p = crossAgePairs(images.filter((im) => test.has(im.id)), BENCH64.pairs, BENCH64.seed);
  assert.equal(p.filter((x) => x.same).length, pos);
  assert.equal(p.filter((x) => !x.same).length, neg);
  // "one age drawn in each 5-year slice": identity k's sorted ages, the j-th in [1 + 5j, 5 + 5j].
  for (let id = 0; id < BENCH64.identities; id++) {
    const ages = images.filter((im) => im.id === id).map((im) => im.age).sort((x, y) => x - y);
    ages.forEach((a, j) => assert.ok(a >= 1 + 5 * j && a <= 5 + 5 * j, `identity ${id}: age ${a} in slice ${j}`));
  }
});

test("'visible' cues: every skin line of an old face is at least MIN_CUE_PX wide at the rendered size; 'demo' ones are not", () => {
  const lines = (cues: 'demo' | 'visible', size: number): number[] => {
    const rng = new Rng(77);
    const t = { ...identityTraits(3, 4), ageingRate: 1.2 };
    const svg = renderFaceSvg(t, 78, drawNuisance(rng), rng, size, cues);
    // Lines drawn in the crease colour (skin × 0.45 'visible', × 0.6 'demo'): find them by their opacity attribute.
    return [...svg.matchAll(/stroke-width="([\d.]+)"(?: fill="none")? opacity=/g)].map((m) => (Number(m[1]) * size) / 100);
  };
  for (const size of [64, 128]) {
    const v = lines('visible', size);
    assert.ok(v.length >= 10, `${v.length} skin lines at 78`);
    for (const px of v) assert.ok(px >= MIN_CUE_PX - 0.01, `a ${px.toFixed(2)} px line at ${size} px`);
  }
  assert.ok(lines('demo', 64).every((px) => px < MIN_CUE_PX), 'the demo strokes stay as they were (sub-pixel at 64 px)');
});

test('bench64 renders deterministically at 64 px (two renders of a slice of identities, 1 and 2 threads)', async () => {
  const base = await mkdtemp(join(tmpdir(), 'mtl-synth-'));
  const { size, seed, testFraction, ageCues } = BENCH64;
  const opts = { size, seed, testFraction, ageCues, identities: 5, imagesPerIdentity: 4, pairs: 8 };
  await synthesize({ ...opts, out: join(base, 'a'), threads: 1 });
  await synthesize({ ...opts, out: join(base, 'b'), threads: 2 });
  const [a, b] = await Promise.all(['a', 'b'].map((d) => digestTree(join(base, d))));
  assert.deepEqual(a, b);
  const meta = await sharp(join(base, 'a', 'images', '00002', '001.jpg')).metadata();
  assert.deepEqual([meta.width, meta.height], [64, 64]);
});
