import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { FROM_REC_STATE, PickleError, fromBin, fromRec, readPickle, recImagePath } from '../src/index.js';

const MAGIC = 0xced7230a;

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
}

/** IRHeader {flag, label, id, id2} + extra labels + data, as MXNet's recordio.pack does. */
function pack(labels: number[], data: Uint8Array, id = 0): Buffer {
  const h = Buffer.alloc(24);
  const flag = labels.length === 1 ? 0 : labels.length;
  h.writeUInt32LE(flag, 0);
  h.writeFloatLE(flag === 0 ? (labels[0] as number) : 0, 4);
  h.writeBigUInt64LE(BigInt(id), 8);
  const extra = Buffer.alloc(flag * 4);
  if (flag > 0) labels.forEach((l, i) => extra.writeFloatLE(l, 4 * i));
  return Buffer.concat([h, extra, data]);
}

function frame(payload: Buffer, cflag = 0): Buffer {
  const pad = Buffer.alloc((4 - (payload.length % 4)) % 4);
  return Buffer.concat([u32(MAGIC), u32((cflag << 29) | payload.length), payload, pad]);
}

async function jpeg(v: number): Promise<Buffer> {
  return sharp({ create: { width: 8, height: 8, channels: 3, background: { r: v, g: 0, b: 0 } } }).jpeg().toBuffer();
}

/** Writes train.rec/.idx: record 0 header [1+n, …], n images with labels, then identity records. */
async function writeRec(dir: string, labels: number[], opts: { splitRecord?: number } = {}): Promise<Buffer[]> {
  const recs: Buffer[] = [frame(pack([1 + labels.length, 1 + labels.length + 2], new Uint8Array(0)))];
  const images: Buffer[] = [];
  for (const [i, l] of labels.entries()) {
    const img = await jpeg(i * 20);
    images.push(img);
    const payload = pack([l], img, i + 1);
    if (opts.splitRecord === i + 1) {
      // A split record: MXNet cuts it where the magic number occurs and drops the magic.
      const cut = 30;
      recs.push(Buffer.concat([frame(payload.subarray(0, cut), 1), frame(payload.subarray(cut), 3)]));
      // Re-joined payload = part1 + magic + part2: make the image bytes match that.
      images[i] = Buffer.concat([payload.subarray(24, cut), u32(MAGIC), payload.subarray(cut)]);
    } else recs.push(frame(payload));
  }
  recs.push(frame(pack([0, 2], new Uint8Array(0))), frame(pack([2, 3], new Uint8Array(0))));
  let off = 0;
  const idx: string[] = [];
  recs.forEach((r, i) => {
    idx.push(`${i}\t${off}`);
    off += r.length;
  });
  await writeFile(join(dir, 'train.rec'), Buffer.concat(recs));
  await writeFile(join(dir, 'train.idx'), idx.join('\n') + '\n');
  return images;
}

test('from-rec extracts <label:6>/<index:8>.jpg byte for byte (incl. a split record) and skips identity records', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mtl-rec-'));
  const images = await writeRec(dir, [0, 0, 1, 7, 7], { splitRecord: 3 });
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

test('from-rec resumes: a rerun writes nothing new and keeps files', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mtl-rec-'));
  await writeRec(dir, [3, 3, 4]);
  const out = join(dir, 'out');
  await fromRec({ dir, out, checkpointEvery: 1 });
  const again = await fromRec({ dir, out });
  assert.equal(again.written, 0);
  assert.equal(again.images, 3);
  // Without the state file, existing files are still detected and not rewritten.
  await writeFile(join(out, FROM_REC_STATE), '{}');
  assert.equal((await fromRec({ dir, out })).written, 0);
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
  await assert.rejects(fromRec({ dir, out: join(dir, 'o2') }), new RegExp(`train\\.rec: byte offset ${off2 + 8}: truncated record payload`));
  await writeFile(join(dir, 'train.rec'), rec);
  await writeFile(join(dir, 'train.idx'), '0\t0\nnot a line\n');
  await assert.rejects(fromRec({ dir, out: join(dir, 'o3') }), /train\.idx:2: expected "index<TAB>offset"/);
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
