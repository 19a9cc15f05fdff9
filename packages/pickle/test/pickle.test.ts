import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { PickleError, PickleGlobal, PickleObject, unpickle } from '../src/index.js';

const PY = '/usr/bin/python3';
const hasPython = existsSync(PY);

function pickled(expr: string, protocol: number): Buffer {
  const r = spawnSync(PY, [
    '-c',
    `import pickle,sys,collections; sys.stdout.buffer.write(pickle.dumps(${expr}, protocol=${protocol}))`,
  ]);
  assert.equal(r.status, 0, String(r.stderr));
  return r.stdout;
}

test(
  'reads what Python writes, protocols 2-5: containers, ints of every width, floats, text, bytes, shared references',
  { skip: !hasPython && 'no /usr/bin/python3' },
  () => {
    const expr =
      "(lambda s: {'ints': [0, 255, 256, 65536, -1, -2**31, 2**40, -2**62, 2**70], 'f': [1.5, -0.0, 1e300]," +
      " 't': ('a', 'é✓'), 'b': b'\\x00\\xff', 'n': None, 'yes': True, 'shared': [s, s], 'empty': ((), [], {})})([7])";
    for (const p of [2, 3, 4, 5]) {
      const v = unpickle(pickled(expr, p), { where: `p${p}` }) as Map<string, unknown>;
      assert.ok(v instanceof Map, `protocol ${p}: a dict comes back as a Map`);
      assert.deepEqual(v.get('ints'), [0, 255, 256, 65536, -1, -(2 ** 31), 2 ** 40, -(2n ** 62n), 2n ** 70n]);
      assert.deepEqual(v.get('f'), [1.5, -0, 1e300]);
      assert.ok(Object.is((v.get('f') as number[])[1], -0));
      assert.deepEqual(v.get('t'), ['a', 'é✓']);
      // Protocol 2 writes bytes as _codecs.encode(str, 'latin1'): opaque without a table entry.
      if (p >= 3) assert.deepEqual(v.get('b'), Uint8Array.of(0, 255));
      else assert.ok(v.get('b') instanceof PickleObject);
      assert.equal(v.get('n'), null);
      assert.equal(v.get('yes'), true);
      const shared = v.get('shared') as unknown[];
      assert.equal(shared[0], shared[1], `protocol ${p}: the memo gives the same object back`);
      assert.deepEqual(v.get('empty'), [[], [], new Map()]);
    }
  },
);

test(
  'globals go through findClass: resolved, kept opaque, or refused at their byte offset',
  { skip: !hasPython && 'no /usr/bin/python3' },
  () => {
    const opaque = unpickle(pickled('complex(1, 2)', 2)) as PickleObject;
    assert.ok(opaque instanceof PickleObject);
    assert.ok(opaque.callable instanceof PickleGlobal);
    assert.equal(opaque.callable.qualifiedName, '__builtin__.complex');
    assert.deepEqual(opaque.args, [1, 2]);
    const bytes = pickled("collections.OrderedDict([('a', 1)])", 2);
    const resolved = unpickle(bytes, {
      findClass: (m, n) => (m === 'collections' && n === 'OrderedDict' ? () => new Map() : undefined),
    });
    assert.deepEqual(resolved, new Map([['a', 1]]));
    assert.throws(
      () =>
        unpickle(bytes, {
          where: 'od.pkl',
          findClass: () => {
            throw new Error('is not allowed');
          },
        }),
      (e: unknown) =>
        e instanceof PickleError &&
        /^od\.pkl: byte offset 2: global collections\.OrderedDict is not allowed$/.test(e.message),
    );
  },
);

test('persistent ids go to persistentLoad; without one they are an error', () => {
  // PROTO 2, SHORT_BINUNICODE 'k', BINPERSID, STOP
  const b = Uint8Array.of(0x80, 2, 0x8c, 1, 0x6b, 0x51, 0x2e);
  assert.deepEqual(unpickle(b, { persistentLoad: (pid) => ({ loaded: pid }) }), { loaded: 'k' });
  assert.throws(
    () => unpickle(b, { where: 'p' }),
    /^PickleError: p: byte offset 5: persistent id without a loader$|p: byte offset 5: persistent id without a loader/,
  );
  assert.throws(
    () =>
      unpickle(b, {
        where: 'p',
        persistentLoad: () => {
          throw new Error('storage 0 missing');
        },
      }),
    /p: byte offset 5: persistent id: storage 0 missing/,
  );
});

test('malformed pickles fail with the source and the opcode offset, never with a JavaScript TypeError', () => {
  const cases: [number[], RegExp][] = [
    [[0x80, 2, 0x4a, 1, 2], /byte offset 2: truncated: opcode needs 4 more byte\(s\), file ends at 5/],
    [[0x80, 2, 0xff], /byte offset 2: unsupported pickle opcode 0xff/],
    [[0x80, 9], /byte offset 0: unsupported protocol/],
    [[0x80, 2, 0x4e, 0x4e, 0x2e], /byte offset 4: STOP with 2 items on the stack/],
    [[0x80, 2, 0x2e], /byte offset 2: STOP with 0 items on the stack/],
    [[0x80, 2, 0x4e, 0x61, 0x2e], /byte offset 3: stack underflow/],
    [[0x80, 2, 0x4e, 0x4e, 0x61, 0x2e], /byte offset 4: APPEND on something that is not a list/],
    [[0x80, 2, 0x68, 3, 0x2e], /byte offset 2: memo key 3 not defined/],
    [[0x80, 2, 0x4e, 0x4e, 0x52, 0x2e], /byte offset 4: REDUCE of something that is not callable/],
    [[0x80, 2, 0x65, 0x2e], /byte offset 2: no MARK on the stack/],
    [[0x80, 2, 0x8c, 1, 0xff, 0x2e], /byte offset 2: text that is not UTF-8/],
    [[0x80, 2, 0x63, 0x6f, 0x73], /byte offset 2: truncated: newline expected/],
  ];
  for (const [bytes, want] of cases) {
    assert.throws(
      () => unpickle(Uint8Array.from(bytes), { where: 'bad.pkl' }),
      (e: unknown) => e instanceof PickleError && e.file === 'bad.pkl' && want.test(e.message),
      `${bytes.map((b) => b.toString(16)).join(' ')} should fail with ${want}`,
    );
  }
});

test('bytes come back as views of the input, not copies', () => {
  // PROTO 3, SHORT_BINBYTES 3 'abc', STOP
  const buf = Buffer.from([0x80, 3, 0x43, 3, 0x61, 0x62, 0x63, 0x2e]);
  const v = unpickle(buf) as Uint8Array;
  assert.deepEqual(v, Uint8Array.of(0x61, 0x62, 0x63));
  assert.equal(v.buffer, buf.buffer);
  assert.ok(!Buffer.isBuffer(v), 'a plain Uint8Array even when a Buffer was passed');
});
