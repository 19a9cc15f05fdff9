import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import {
  FROM_REC_INCOMPLETE,
  FROM_REC_STATE,
  PickleError,
  RecordReader,
  fromBin,
  fromRec,
  readPickle,
  recImagePath,
} from '../src/index.js';
import { jpeg, writeRec } from './recordio-writer.js';

test('from-rec extracts <label:6>/<index:8>.jpg byte for byte (incl. a split record) and skips identity records', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mtl-rec-'));
  const { images } = await writeRec(dir, [0, 0, 1, 7, 7], { splitRecord: 3 });
  const out = join(dir, 'out');
  const seen: number[] = [];
  const r = await fromRec({ dir, out, onProgress: (d) => seen.push(d) });
  assert.deepEqual(r, { images: 5, written: 5, identities: 3 });
  assert.deepEqual(seen, [1, 2, 3, 4, 5]);
  const expected = [
    [0, 1],
    [0, 2],
    [1, 3],
    [7, 4],
    [7, 5],
  ];
  assert.equal(recImagePath(7, 5), '000007/00000005.jpg');
  for (const [k, [label, index]] of expected.entries()) {
    const got = await readFile(join(out, recImagePath(label!, index!)));
    assert.ok(got.equals(images[k]!), `image ${index}`);
  }
  assert.deepEqual((await readdir(out)).sort(), [FROM_REC_STATE, '000000', '000001', '000007']);
});

test('from-rec resumes: a rerun writes nothing new and keeps files; a lost image comes back byte for byte', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mtl-rec-'));
  const { images } = await writeRec(dir, [3, 3, 4]);
  const out = join(dir, 'out');
  await fromRec({ dir, out, checkpointEvery: 1 });
  const files = [recImagePath(3, 1), recImagePath(3, 2), recImagePath(4, 3)].map((f) => join(out, f));
  const mtimes = await Promise.all(files.map(async (f) => (await stat(f)).mtimeMs));
  const again = await fromRec({ dir, out });
  assert.equal(again.written, 0);
  assert.equal(again.images, 3);
  // Without the state file, existing files are still detected and not rewritten; a missing one is.
  await writeFile(join(out, FROM_REC_STATE), '{}');
  await unlink(files[1]!);
  assert.equal((await fromRec({ dir, out })).written, 1);
  for (const [k, f] of files.entries()) {
    assert.ok((await readFile(f)).equals(images[k]!), `${f} holds record ${k + 1}'s bytes`);
    if (k !== 1) assert.equal((await stat(f)).mtimeMs, mtimes[k], `${f} was not rewritten`);
  }
});

test('from-rec: a bad magic number and a truncated record fail naming the file and byte offset', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mtl-rec-'));
  await writeRec(dir, [0, 1]);
  const rec = await readFile(join(dir, 'train.rec'));
  const idx = (await readFile(join(dir, 'train.idx'), 'utf8')).split('\n');
  const off2 = Number(idx[2]!.split('\t')[1]);
  const bad = Buffer.from(rec);
  bad.writeUInt32LE(0xdeadbeef, off2);
  await writeFile(join(dir, 'train.rec'), bad);
  await assert.rejects(
    fromRec({ dir, out: join(dir, 'o1') }),
    new RegExp(`train\\.rec: byte offset ${off2}: bad magic 0xdeadbeef`),
  );
  await writeFile(join(dir, 'train.rec'), rec.subarray(0, off2 + 20));
  await writeFile(join(dir, 'train.idx'), idx.slice(0, 3).join('\n') + '\n');
  await assert.rejects(fromRec({ dir, out: join(dir, 'o2') }), new RegExp(`train\\.rec: byte offset ${off2 + 8}: truncated record payload`));
  await writeFile(join(dir, 'train.rec'), rec);
  await writeFile(join(dir, 'train.idx'), '0\t0\nnot a line\n');
  await assert.rejects(fromRec({ dir, out: join(dir, 'o3') }), /train\.idx:2: expected "index<TAB>offset"/);
});

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('from-rec refuses labels that name no identity (negative, NaN, fractional, beyond 2^24) and creates nothing', async () => {
  for (const bad of [-7, NaN, 2.5, 1e30, 2 ** 24 + 2]) {
    const dir = await mkdtemp(join(tmpdir(), 'mtl-rec-'));
    const { offsets } = await writeRec(dir, [bad, 0]);
    const out = join(dir, 'out');
    // The label as float32 stores it, which is what the file holds.
    const stored = String(Math.fround(bad));
    await assert.rejects(
      fromRec({ dir, out }),
      new RegExp(`train\\.rec: byte offset ${offsets[1]}: record 1: label ${escape(stored)} is not an identity .*; removed ${escape(out)}`),
      `label ${bad}`,
    );
    assert.equal(existsSync(out), false, `label ${bad}: the output directory is gone`);
  }
  // The largest label float32 holds exactly is still an identity.
  const dir = await mkdtemp(join(tmpdir(), 'mtl-rec-'));
  const { images } = await writeRec(dir, [2 ** 24]);
  await fromRec({ dir, out: join(dir, 'out') });
  assert.ok((await readFile(join(dir, 'out', recImagePath(2 ** 24, 1)))).equals(images[0]!));
});

test('from-rec refuses a header record whose image count is not a whole number ≥ 1, or disagrees with the index', async () => {
  for (const end of [0, -1, 1, 2.5, NaN]) {
    const dir = await mkdtemp(join(tmpdir(), 'mtl-rec-'));
    await writeRec(dir, [0, 1], { headerEnd: end });
    const out = join(dir, 'out');
    await assert.rejects(
      fromRec({ dir, out }),
      new RegExp(`train\\.rec: byte offset 0: record 0 \\(the header\\) says the image records end at ${escape(String(end))}; expected a whole number ≥ 2`),
    );
    assert.equal(existsSync(out), false);
  }
  const dir = await mkdtemp(join(tmpdir(), 'mtl-rec-'));
  // The header announces 5 images (records 1..5); the index has records 0..4 only.
  await writeRec(dir, [0, 1], { headerEnd: 6 });
  await assert.rejects(fromRec({ dir, out: join(dir, 'out') }), /train\.idx: lists 4 image records, but record 0 of .*train\.rec announces 5 \(records 1\.\.5\)/);
  await writeRec(dir, [0, 1], { headerEnd: 2 });
  const idx = (await readFile(join(dir, 'train.idx'), 'utf8')).split('\n');
  await writeFile(join(dir, 'train.idx'), [idx[0], idx[2], idx[3]].join('\n') + '\n');
  await assert.rejects(fromRec({ dir, out: join(dir, 'out') }), /train\.idx: lists 0 image records, but record 0 of .*train\.rec announces 1 \(records 1\.\.1\)/);
  assert.equal(existsSync(join(dir, 'out')), false);
});

test('from-rec refuses a split record without its last part instead of joining it to the next record', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mtl-rec-'));
  const { offsets } = await writeRec(dir, [0, 1, 2], { unterminatedSplit: 2 });
  await assert.rejects(
    fromRec({ dir, out: join(dir, 'out') }),
    new RegExp(`train\\.rec: byte offset ${offsets[2]}: split record has no last part: the part at byte offset ${offsets[3]} starts a new record \\(continuation flag 0\\)`),
  );
  // A record that begins with a last part has lost its first one.
  const rec = await readFile(join(dir, 'train.rec'));
  const lrec = rec.readUInt32LE(offsets[1]! + 4);
  rec.writeUInt32LE(((lrec & ((1 << 29) - 1)) | (3 << 29)) >>> 0, offsets[1]! + 4);
  await writeFile(join(dir, 'train.rec'), rec);
  await assert.rejects(
    fromRec({ dir, out: join(dir, 'out2') }),
    new RegExp(`byte offset ${offsets[1]}: record starts with continuation flag 3`),
  );
});

test('from-rec: an index entry past the end of the file is named with its line; no message has a negative distance', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mtl-rec-'));
  const { recBytes, offsets } = await writeRec(dir, [0, 1]);
  const idx = (await readFile(join(dir, 'train.idx'), 'utf8')).split('\n');
  const far = recBytes + 1_000_000_000;
  idx[2] = `2\t${far}`;
  await writeFile(join(dir, 'train.idx'), idx.join('\n'));
  const err = await fromRec({ dir, out: join(dir, 'out') }).then(
    () => assert.fail('accepted an offset past the end'),
    (e: Error) => e,
  );
  assert.match(err.message, new RegExp(`train\\.idx:3: record 2 at byte offset ${far} lies past the end of .*train\\.rec \\(${recBytes} bytes\\)`));
  // The temporary directory's random name may hold "-0": look for a minus sign in front of a number.
  assert.doesNotMatch(err.message.replaceAll(dir, '<dir>'), /(^|[\s(])-\d/);
  // The reader itself, at a record that starts past the end and at one that is cut short.
  const reader = await RecordReader.open(join(dir, 'train.rec'));
  try {
    await assert.rejects(reader.read(far), (e: Error) => !/(^|[\s(])-\d/.test(e.message.replaceAll(dir, "<dir>")) && /would start at or past the end of the file/.test(e.message));
    await assert.rejects(
      reader.read(recBytes - 4),
      new RegExp(`byte offset ${recBytes - 4}: truncated record header: needs 8 bytes, the file ends 4 bytes later`),
    );
    assert.ok(offsets[2]! < recBytes);
  } finally {
    await reader.close();
  }
});

test('from-rec: a failure after some images marks the output INCOMPLETE with the reason; a rerun resumes and clears it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mtl-rec-'));
  const out = join(dir, 'out');
  await writeRec(dir, [0, 1, -1]);
  await assert.rejects(fromRec({ dir, out }), /record 3: label -1 is not an identity .*; .*out is incomplete \(2 images written now, see .*INCOMPLETE\)/);
  assert.match(await readFile(join(out, FROM_REC_INCOMPLETE), 'utf8'), /stopped at record 3: .*label -1/);
  assert.ok(existsSync(join(out, recImagePath(1, 2))));
  // The set mended (same size): only the missing image is written and the marker goes.
  await writeRec(dir, [0, 1, 2]);
  const r = await fromRec({ dir, out });
  assert.deepEqual(r, { images: 3, written: 1, identities: 3 });
  assert.equal(existsSync(join(out, FROM_REC_INCOMPLETE)), false);
});

const PY = '/usr/bin/python3';
const hasPython = existsSync(PY);

test('pickle reader: protocols 2, 3 and 4 as Python writes them', { skip: !hasPython && 'no /usr/bin/python3' }, () => {
  for (const p of [2, 3, 4]) {
    const r = spawnSync(PY, ['-c', `import pickle,sys; sys.stdout.buffer.write(pickle.dumps(([b'ab', b'\\xff\\x00', b''], [True, False]), protocol=${p}))`]);
    assert.equal(r.status, 0, String(r.stderr));
    const v = readPickle(r.stdout, `p${p}`);
    assert.deepEqual(v, [[Uint8Array.of(0x61, 0x62), Uint8Array.of(0xff, 0), new Uint8Array(0)], [true, false]], `protocol ${p}`);
  }
});

test('pickle reader: hand-written Python 2 strings; truncation and unknown globals name the byte offset', () => {
  // PROTO 2, EMPTY_LIST, MARK, SHORT_BINSTRING 'ab', BINSTRING 'c', APPENDS, NEWTRUE, TUPLE2, STOP
  const py2 = Buffer.from([0x80, 2, 0x5d, 0x28, 0x55, 2, 0x61, 0x62, 0x54, 1, 0, 0, 0, 0x63, 0x65, 0x88, 0x86, 0x2e]);
  assert.deepEqual(readPickle(py2), [[Uint8Array.of(0x61, 0x62), Uint8Array.of(0x63)], true]);
  assert.throws(() => readPickle(py2.subarray(0, 11), 'x.bin'), (e: unknown) => e instanceof PickleError && /x\.bin: byte offset 8: truncated/.test(e.message));
  const evil = Buffer.from('\x80\x02cos\nsystem\n.', 'latin1');
  assert.throws(() => readPickle(evil, 'evil.bin'), /evil\.bin: byte offset 2: global os\.system is not allowed/);
  assert.throws(() => readPickle(Buffer.from([0x80, 2, 0xff]), 'o.bin'), /o\.bin: byte offset 2: unsupported pickle opcode 0xff/);
});

test('from-bin writes 00001.jpg… and pairs a b 1|-1; a mismatched count is an error', { skip: !hasPython && 'no /usr/bin/python3' }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mtl-bin-'));
  const imgs = await Promise.all([10, 60, 110, 160].map((v) => jpeg(v)));
  const png = await sharp({ create: { width: 4, height: 4, channels: 3, background: '#0f0' } }).png().toBuffer();
  const hex = [...imgs, png].map((b) => `bytes.fromhex('${b.toString('hex')}')`);
  const write = (file: string, images: string[], flags: string): void => {
    const r = spawnSync(PY, ['-c', `import pickle; open('${file}','wb').write(pickle.dumps(([${images.join(',')}], [${flags}]), protocol=2))`]);
    assert.equal(r.status, 0, String(r.stderr));
  };
  write(join(dir, 'v.bin'), hex.slice(0, 4), 'True, False');
  const r = await fromBin(join(dir, 'v.bin'), join(dir, 'out'));
  assert.deepEqual(r, { images: 4, pairs: 2, positives: 1 });
  assert.equal(await readFile(join(dir, 'out', 'pairs.txt'), 'utf8'), '00001.jpg 00002.jpg 1\n00003.jpg 00004.jpg -1\n');
  assert.ok((await readFile(join(dir, 'out', '00003.jpg'))).equals(imgs[2]!));
  // A PNG inside is re-encoded as JPEG.
  write(join(dir, 'p.bin'), [hex[4]!, hex[0]!], 'True');
  await fromBin(join(dir, 'p.bin'), join(dir, 'out2'));
  assert.equal((await sharp(join(dir, 'out2', '00001.jpg')).metadata()).format, 'jpeg');
  write(join(dir, 'bad.bin'), hex.slice(0, 3), 'True, False');
  await assert.rejects(fromBin(join(dir, 'bad.bin'), join(dir, 'out3')), /bad\.bin: 3 images for 2 pair flags; expected 4/);
});

/** A verification-set pickle written by hand (protocol 3: BINBYTES, lists, TUPLE2), as Python 3 writes it. */
function binPickle(images: Buffer[], flags: boolean[]): Buffer {
  const parts: Buffer[] = [Buffer.from([0x80, 3, 0x5d, 0x28])]; // PROTO 3, EMPTY_LIST, MARK
  for (const img of images) {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(img.length);
    parts.push(Buffer.from('B'), len, img); // BINBYTES
  }
  parts.push(Buffer.from([0x65, 0x5d, 0x28])); // APPENDS, EMPTY_LIST, MARK
  parts.push(Buffer.from(flags.map((f) => (f ? 0x88 : 0x89)))); // NEWTRUE / NEWFALSE
  parts.push(Buffer.from([0x65, 0x86, 0x2e])); // APPENDS, TUPLE2, STOP
  return Buffer.concat(parts);
}

test('from-bin: a failed conversion removes the directory it created, or the images it wrote into an existing one', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mtl-bin-'));
  const good = await Promise.all([30, 90, 150].map((v) => jpeg(v)));
  const broken = Buffer.from('not an image at all');
  await writeFile(join(dir, 'ok.bin'), binPickle([good[0]!, good[1]!], [true]));
  assert.deepEqual(await fromBin(join(dir, 'ok.bin'), join(dir, 'ok')), { images: 2, pairs: 1, positives: 1 });
  await writeFile(join(dir, 'bad.bin'), binPickle([good[0]!, good[1]!, good[2]!, broken], [true, false]));
  const fresh = join(dir, 'new', 'lfw');
  await assert.rejects(
    fromBin(join(dir, 'bad.bin'), fresh),
    new RegExp(`bad\\.bin: image 3 \\(19 bytes\\) cannot be decoded: .*; removed ${escape(join(dir, 'new'))}, which this run had created`),
  );
  assert.equal(existsSync(join(dir, 'new')), false);
  // An existing directory keeps what was there before, and nothing of this run.
  const existing = join(dir, 'existing');
  await mkdir(existing);
  await writeFile(join(existing, 'keep.txt'), 'mine');
  await writeFile(join(dir, 'bad2.bin'), binPickle([good[2]!, good[2]!, broken, good[0]!], [true, false]));
  await assert.rejects(
    fromBin(join(dir, 'bad2.bin'), existing),
    /image 2 \(19 bytes\) cannot be decoded: .*; removed the 2 images this run had written to/,
  );
  assert.deepEqual(await readdir(existing), ['keep.txt']);
  assert.equal(await readFile(join(existing, 'keep.txt'), 'utf8'), 'mine');
});
