import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AGE_GROUP_THRESHOLDS,
  AnnotationError,
  FasTargetSampler,
  ageGroup,
  buildDataset,
  loadDataset,
  parseAnnotations,
  type AgeGroupCount,
} from '../src/index.js';

test('age groups follow the spec table at and around every threshold', () => {
  // 7 groups: 0–10, 11–20, …, 51–60, 61+
  assert.deepEqual([0, 10, 11, 20, 21, 30, 31, 40, 41, 50, 51, 60, 61, 100].map((a) => ageGroup(a)), [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]);
  assert.deepEqual([30, 31, 40, 41, 50, 51].map((a) => ageGroup(a, 4)), [0, 1, 1, 2, 2, 3]);
  assert.deepEqual([12, 13, 18, 19, 25, 26, 65, 66].map((a) => ageGroup(a, 8)), [0, 1, 1, 2, 2, 3, 6, 7]);
  for (const g of [4, 5, 6, 7, 8] as AgeGroupCount[]) {
    const th = AGE_GROUP_THRESHOLDS[g];
    assert.equal(th.length, g - 1);
    for (let age = 0; age <= 100; age++) assert.equal(ageGroup(age, g), th.filter((t) => age > t).length);
  }
  assert.throws(() => ageGroup(NaN), /finite/);
  assert.throws(() => ageGroup(20, 9 as AgeGroupCount), /groups must be 4..8/);
});

test('annotation lines parse; blank lines and CRLF are tolerated', () => {
  const e = parseAnnotations('3 a/1.jpg 25 1\r\n\n10 b/2.jpg 7.5 0\n', 'list.txt');
  assert.deepEqual(e, [
    { id: 3, file: 'a/1.jpg', age: 25, gender: 1, line: 1 },
    { id: 10, file: 'b/2.jpg', age: 7.5, gender: 0, line: 3 },
  ]);
});

test('malformed lines fail with file:line and the offending text', () => {
  const cases: [string, RegExp][] = [
    ['1 a.jpg 20 1\n2 b.jpg 30\n', /^list\.txt:2: expected 4 fields .* got 3: "2 b.jpg 30"$/],
    ['1 a.jpg twenty 1\n', /^list\.txt:1: age "twenty" is not a non-negative number: "1 a.jpg twenty 1"$/],
    ['\n\n-4 a.jpg 20 1\n', /^list\.txt:3: negative identity id -4/],
    ['x a.jpg 20 1\n', /^list\.txt:1: identity id "x" is not/],
    ['1 a.jpg 20 2\n', /^list\.txt:1: gender "2" is not 0 or 1/],
    ['1 a.jpg 20 1 extra\n', /got 5/],
  ];
  for (const [text, re] of cases) {
    assert.throws(
      () => parseAnnotations(text, 'list.txt'),
      (err: unknown) => err instanceof AnnotationError && re.test(err.message),
      text,
    );
  }
});

test('identities are remapped to 0..C-1 by ascending original id; groups computed', () => {
  const ds = buildDataset(parseAnnotations('900 a 5 1\n7 b 65 0\n900 c 15 1\n42 d 35 0\n'), { root: '/r' });
  assert.equal(ds.numClasses, 3);
  assert.deepEqual(Array.from(ds.labels), [2, 0, 2, 1]);
  assert.deepEqual(ds.originalIds, [7, 42, 900]);
  assert.deepEqual(Array.from(ds.groups), [0, 6, 1, 3]);
  assert.deepEqual(Array.from(ds.genders), [1, 0, 1, 0]);
});

test('loadDataset names the list file when it is missing or empty', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mtl-ann-'));
  await assert.rejects(loadDataset(join(dir, 'nope.txt')), /nope\.txt: cannot read annotation list/);
  await writeFile(join(dir, 'empty.txt'), '\n');
  await assert.rejects(loadDataset(join(dir, 'empty.txt')), /empty\.txt: annotation list is empty/);
  await writeFile(join(dir, 'l.txt'), '1 x.jpg 30 1\n');
  const ds = await loadDataset(join(dir, 'l.txt'));
  assert.equal(ds.root, dir);
});

test('FAS targets: uniform over groups, the real image is of the target group, deterministic per iteration', () => {
  const groups = Int32Array.from({ length: 700 }, (_, i) => (i * 7919) % 7);
  const s = new FasTargetSampler(groups, 7, 11);
  const counts = new Array(7).fill(0);
  for (let it = 0; it < 200; it++) {
    const { targetGroups, realIndices } = s.sample(35, it, 0);
    targetGroups.forEach((g, i) => {
      assert.equal(groups[realIndices[i] as number], g);
      counts[g]++;
    });
  }
  // 7000 draws, expected 1000 per group; 5 sigma ≈ 146
  for (const c of counts) assert.ok(Math.abs(c - 1000) < 150, `counts ${counts}`);
  assert.deepEqual(s.sample(8, 3, 1), s.sample(8, 3, 1));
  assert.notDeepEqual(s.sample(8, 3, 1), s.sample(8, 4, 1));
});

test('FAS sampler: an empty group is an error unless asked to skip it', () => {
  const groups = Int32Array.from([0, 0, 2, 2]);
  assert.throws(() => new FasTargetSampler(groups, 3, 0), /age group\(s\) 1 have no images/);
  const s = new FasTargetSampler(groups, 3, 0, { skipEmptyGroups: true });
  assert.ok(Array.from(s.sample(50, 0).targetGroups).every((g) => g !== 1));
});
