// The writer against Python's own unpickler (/usr/bin/python3): integers at every opcode's edge,
// floats, text, containers, calls and persistent ids come back as Python would have built them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  OrderedDict,
  PickleGlobal,
  PickleObject,
  PyFloat,
  PyPersistent,
  PyTuple,
  pickle,
  unpickle,
  type PickleWritable,
} from '../src/index.js';

const PY = '/usr/bin/python3';

/** Python's repr of `pickle.loads(bytes)` (persistent ids shown as ('pid', id)). */
function pythonRepr(bytes: Uint8Array): string {
  const code =
    'import pickle, sys\n' +
    'class U(pickle.Unpickler):\n' +
    "    def persistent_load(self, pid): return ('pid', pid)\n" +
    'print(repr(U(sys.stdin.buffer).load()))';
  const r = spawnSync(PY, ['-c', code], { input: bytes, encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0)
    throw new Error(`${PY} is needed to check the pickle writer (status ${r.status}): ${r.stderr}`);
  return r.stdout.trim();
}

const EDGES = [0, 255, 256, 65535, 65536, -1, -(2 ** 31), 2 ** 31 - 1, 2 ** 31, -(2 ** 31) - 1, 2 ** 53 - 1];
const BIG = [2n ** 63n, -(2n ** 63n), 2n ** 64n - 1n, -129n, 128n, 2n ** 200n];

test('Python reads integers at every width edge, floats, text and containers as written', () => {
  const value: PickleWritable = new Map<PickleWritable, PickleWritable>([
    ['ints', EDGES],
    ['big', BIG],
    ['floats', [new PyFloat(0.1), new PyFloat(-0), new PyFloat(1e300), new PyFloat(65536)]],
    ['text', new PyTuple('', 'é✓', 'a\nb')],
    [
      'tuples',
      [new PyTuple(), new PyTuple(1), new PyTuple(1, 2), new PyTuple(1, 2, 3), new PyTuple(1, 2, 3, 4)],
    ],
    ['flags', [true, false, null]],
    [
      3,
      new OrderedDict([
        ['b', 1],
        ['a', 2],
      ]),
    ],
  ]);
  const want =
    `{'ints': [${EDGES.join(', ')}], 'big': [${BIG.join(', ')}], 'floats': [0.1, -0.0, 1e+300, 65536.0], ` +
    "'text': ('', 'é✓', 'a\\nb'), 'tuples': [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)], " +
    "'flags': [True, False, None], 3: OrderedDict([('b', 1), ('a', 2)])}";
  assert.equal(pythonRepr(pickle(value)), want);
});

test('calls, their state and persistent ids: Python builds them, our reader reads them back', () => {
  const call = new PickleObject(new PickleGlobal('collections', 'OrderedDict'), []);
  const built = new PickleObject(new PickleGlobal('argparse', 'Namespace'), []);
  built.state = new Map([['lr', new PyFloat(0.5)]]); // BUILD: the state sets attributes
  const value = new PyTuple(
    built,
    call,
    new PyPersistent(new PyTuple('storage', 'key', 7)),
    new PickleGlobal('builtins', 'len'),
  );
  assert.equal(
    pythonRepr(pickle(value)),
    "(Namespace(lr=0.5), OrderedDict(), ('pid', ('storage', 'key', 7)), <built-in function len>)",
  );
  const back = unpickle(pickle([BIG[0]!, ...EDGES, 'x']), {}) as unknown[];
  assert.deepEqual(back, [BIG[0], ...EDGES, 'x']);
});

test('a list and a dict over 1,000 entries are batched, as Python batches them', () => {
  const n = 2500;
  const list = Array.from({ length: n }, (_, i) => i);
  const dict = new Map(list.map((i) => [i, i * 2] as [number, number]));
  const got = pythonRepr(pickle(new PyTuple(list, dict)));
  assert.equal(got.length > 0, true);
  const back = unpickle(pickle(new PyTuple(list, dict)), {}) as [number[], Map<number, number>];
  assert.deepEqual(back[0], list);
  assert.deepEqual([...back[1]], [...dict]);
  assert.ok(got.startsWith('([0, 1, 2,') && got.includes('2499: 4998}'));
});
