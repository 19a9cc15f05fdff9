import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { parsePairs, indexPairs } from '../src/pairs-file.js';
import { loadPairsSet } from '../src/model/load-pairs.js';

test('pairs lists parse to indexed pairs; bad lines are named by file and line', () => {
  const lines = parsePairs('# header\na.jpg b.jpg 1\n\nb.jpg c.jpg -1\r\na.jpg c.jpg 0\n', 'p.txt');
  assert.deepEqual(
    lines.map((l) => [l.a, l.b, l.same, l.line]),
    [
      ['a.jpg', 'b.jpg', true, 2],
      ['b.jpg', 'c.jpg', false, 4],
      ['a.jpg', 'c.jpg', false, 5],
    ],
  );
  const idx = indexPairs(lines);
  assert.deepEqual(idx.files, ['a.jpg', 'b.jpg', 'c.jpg']);
  assert.deepEqual(idx.pairs, [
    [0, 1],
    [1, 2],
    [0, 2],
  ]);
  assert.deepEqual(Array.from(idx.same), [1, 0, 0]);
  assert.throws(() => parsePairs('a b 1\na b\n', 'p.txt'), /p\.txt:2: expected 3 fields/);
  assert.throws(() => parsePairs('a b yes\n', 'p.txt'), /p\.txt:1: label "yes"/);
  assert.throws(() => parsePairs('\n', 'p.txt'), /p\.txt: no pairs/);
});

test('a pairs set loads its images once each, with ages from all.txt beside it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'eval-pairs-'));
  try {
    mkdirSync(join(dir, 'images'));
    const colours = { 'images/a.png': [255, 0, 0], 'images/b.png': [0, 255, 0], 'images/c.png': [0, 0, 255] };
    for (const [f, [r, g, b]] of Object.entries(colours)) {
      await sharp({ create: { width: 16, height: 16, channels: 3, background: { r: r!, g: g!, b: b! } } })
        .png()
        .toFile(join(dir, f));
    }
    writeFileSync(join(dir, 'pairs.txt'), 'images/a.png images/b.png 1\nimages/c.png images/a.png -1\n');
    writeFileSync(join(dir, 'all.txt'), '0 images/a.png 10 1\n0 images/b.png 35 1\n1 images/c.png 60 0\n');
    const set = await loadPairsSet(join(dir, 'pairs.txt'), { size: 8 });
    assert.equal(set.name, 'pairs');
    assert.equal(set.images.n, 3);
    assert.equal(set.images.images.length, 3 * 8 * 8 * 3);
    // c.png (index 2) is pure blue → (-1, -1, 1)
    assert.deepEqual(Array.from(set.images.images.subarray(2 * 192, 2 * 192 + 3)), [-1, -1, 1]);
    assert.deepEqual(Array.from(set.ages!), [10, 35, 60]);
    writeFileSync(join(dir, 'pairs.txt'), 'images/a.png images/missing.png 1\n');
    await assert.rejects(loadPairsSet(join(dir, 'pairs.txt'), { size: 8 }), /missing\.png: cannot decode/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
