// `annotate` on ImageFolder trees with an estimator whose answers are a known function of the file name:
// the list's format and order, contiguous ids and their map, resuming after an interruption, a bad image,
// and merging a published list.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import {
  annotateImageFolder,
  listImageFolder,
  parseAnnotations,
  type LabelEstimator,
  type LabelResult,
} from '../src/index.js';

/** A tree with identities given as [folder, files]; file contents do not matter to the engine. */
function makeTree(spec: [string, string[]][]): string {
  const root = mkdtempSync(join(tmpdir(), 'annotate-'));
  for (const [dir, files] of spec) {
    mkdirSync(join(root, dir), { recursive: true });
    for (const f of files) writeFileSync(join(root, dir, f), f.startsWith('bad') ? 'not an image' : 'x');
  }
  return root;
}

/** age = length of the path, gender = its parity; files named bad* are unreadable. */
const known = (path: string): LabelResult =>
  path.split('/').pop()!.startsWith('bad')
    ? { error: 'Input buffer contains unsupported image format' }
    : { age: 10 + (path.length % 60) + 0.4, gender: (path.length % 2) as 0 | 1 };

function counting(failAfterBatches = Infinity): { estimate: LabelEstimator; seen: string[] } {
  const seen: string[] = [];
  let batches = 0;
  return {
    seen,
    estimate: async (paths) => {
      if (batches++ >= failAfterBatches) throw new Error('interrupted');
      seen.push(...paths);
      return paths.map(known);
    },
  };
}

const SPEC: [string, string[]][] = [
  ['n000002', ['b.jpg', 'a.png', 'c.webp']],
  ['Bob', ['1.JPG', 'notes.txt']],
  ['empty', []],
  ['alice', ['x.jpeg', 'bad.jpg', 'y.jpg']],
];

test('format: "id file age gender", ids contiguous in sorted folder order, the map beside the list', async () => {
  const root = makeTree(SPEC);
  // a list outside the tree: its paths lead from its own folder into the tree
  const tree = root.split('/').pop()!;
  const out = join(root, '..', `${tree}-list.txt`);
  const { estimate } = counting();
  const r = await annotateImageFolder({ root, out, estimate, batchSize: 2 });
  // code-unit order: upper case before lower case; "empty" has no image and takes no id
  assert.deepEqual(listImageFolder(root).identities, ['Bob', 'alice', 'n000002']);
  const text = readFileSync(out, 'utf8');
  const entries = parseAnnotations(text, out);
  const expected = [
    ['Bob/1.JPG', 0],
    ['alice/x.jpeg', 1],
    ['alice/y.jpg', 1],
    ['n000002/a.png', 2],
    ['n000002/b.jpg', 2],
    ['n000002/c.webp', 2],
  ] as const;
  assert.deepEqual(
    entries.map((e) => [e.file, e.id]),
    expected.map(([f, id]) => [`${tree}/${f}`, id]),
  );
  for (const e of entries) {
    const k = known(join(root, '..', e.file)) as { age: number; gender: number };
    assert.equal(e.age, Math.round(k.age));
    assert.equal(e.gender, k.gender);
  }
  assert.match(text, /^0 annotate-\w+\/Bob\/1\.JPG \d+ [01]\n/);
  assert.equal(readFileSync(r.identityMap, 'utf8'), '0 Bob\n1 alice\n2 n000002\n');
  assert.equal(r.identityMap, out.replace(/\.txt$/, '.identities.txt'));
  // the bad image: listed with its reason, not in the list, not fatal
  assert.deepEqual(r.unreadable, [{ file: 'alice/bad.jpg', reason: 'Input buffer contains unsupported image format' }]);
  assert.equal(readFileSync(r.unreadableList!, 'utf8'), 'alice/bad.jpg\tInput buffer contains unsupported image format\n');
  assert.equal(r.estimated, 6);
  assert.ok(!existsSync(`${out}.partial`));
});

test('an identity whose every image is unreadable takes no id: the ids stay contiguous', async () => {
  const root = makeTree([
    ['a', ['1.jpg']],
    ['b', ['bad1.jpg', 'bad2.jpg']],
    ['c', ['1.jpg']],
  ]);
  const out = join(root, 'list.txt');
  const r = await annotateImageFolder({ root, out, estimate: counting().estimate });
  assert.deepEqual(
    parseAnnotations(readFileSync(out, 'utf8'), out).map((e) => [e.id, e.file]),
    [
      [0, 'a/1.jpg'],
      [1, 'c/1.jpg'],
    ],
  );
  assert.equal(readFileSync(r.identityMap, 'utf8'), '0 a\n1 c\n');
  assert.equal(r.identities, 2);
  assert.equal(r.unreadable.length, 2);
});

test('resume: an interrupted run leaves no list; the rerun labels only what is left and writes the same list', async () => {
  const spec: [string, string[]][] = Array.from({ length: 5 }, (_, i) => [
    `id${i}`,
    Array.from({ length: 4 }, (_, k) => `${k}.jpg`),
  ]);
  const root = makeTree(spec);
  const once = join(root, 'once.txt');
  await annotateImageFolder({ root, out: once, estimate: counting().estimate, batchSize: 3 });
  const out = join(root, 'list.txt');
  const first = counting(2);
  await assert.rejects(annotateImageFolder({ root, out, estimate: first.estimate, batchSize: 3 }), /interrupted/);
  assert.ok(!existsSync(out), 'no list after an interruption');
  assert.equal(first.seen.length, 6);
  // a torn last line, as a kill in the middle of a write leaves it
  writeFileSync(`${out}.partial`, readFileSync(`${out}.partial`, 'utf8') + '{"file":"id4/0.jp');
  const second = counting();
  const r = await annotateImageFolder({ root, out, estimate: second.estimate, batchSize: 3 });
  assert.equal(r.resumed, 6);
  assert.equal(second.seen.length, 14);
  assert.deepEqual(
    second.seen.map((p) => relative(root, p)).filter((f) => first.seen.some((p) => relative(root, p) === f)),
    [],
    'nothing labelled twice',
  );
  assert.equal(readFileSync(out, 'utf8'), readFileSync(once, 'utf8'));
});

test('--ages: published ages and genders where the <identity>/<file> matches, the estimator for the rest', async () => {
  const root = makeTree([
    ['0000045', ['001.jpg', '002.jpg']],
    ['0000099', ['001.jpg']],
  ]);
  const published = join(root, 'casia.txt');
  // the release's lists name files under their own dataset folder
  writeFileSync(
    published,
    '7 casia-webface-112x112-arcface/0000045/001.jpg 33 1\n' +
      '7 casia-webface-112x112-arcface/0000045/002.jpg 61 0\n' +
      '9 casia-webface-112x112-arcface/0000100/001.jpg 20 1\n',
  );
  const out = join(root, 'list.txt');
  const c = counting();
  const r = await annotateImageFolder({ root, out, estimate: c.estimate, published });
  assert.equal(r.fromPublished, 2);
  assert.deepEqual(
    c.seen.map((p) => relative(root, p)),
    ['0000099/001.jpg'],
  );
  const lines = readFileSync(out, 'utf8').split('\n');
  assert.equal(lines[0], '0 0000045/001.jpg 33 1');
  assert.equal(lines[1], '0 0000045/002.jpg 61 0');
  assert.match(lines[2]!, /^1 0000099\/001\.jpg \d+ [01]$/);
  // no estimator and a published list that does not cover everything: one line naming the first gap
  await assert.rejects(
    annotateImageFolder({ root, out: join(root, 'x.txt'), published }),
    /1 of 3 images have no age in .*casia\.txt \(first: 0000099\/001\.jpg\) and no estimator was given/,
  );
  writeFileSync(published, '7 a/0000045/001.jpg 33 1\n8 b/0000045/001.jpg 34 1\n');
  await assert.rejects(
    annotateImageFolder({ root, out: join(root, 'y.txt'), published, estimate: c.estimate }),
    /casia\.txt:2: 0000045\/001\.jpg is also on line 1 with another age or gender/,
  );
});
