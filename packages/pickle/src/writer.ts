/**
 * A Python pickle writer (protocol 2, what `torch.save` writes by default) for the few types a
 * state dict needs. Python's int/float and list/tuple distinctions are explicit: a JS number must be
 * an integer (an `int`), floats are {@link PyFloat}, tuples {@link PyTuple}; arrays are lists, `Map`s
 * dicts and {@link OrderedDict}s `collections.OrderedDict`s. Calls (`REDUCE`) are
 * {@link PickleObject}s of a {@link PickleGlobal}; persistent ids (torch storages) are
 * {@link PyPersistent}. No memo is written: every value is spelled out where it occurs.
 */
import { PickleGlobal, PickleObject } from './index.js';

export class PyFloat {
  constructor(readonly value: number) {}
}

export class PyTuple {
  readonly items: PickleWritable[];
  constructor(...items: PickleWritable[]) {
    this.items = items;
  }
}

/** A dict pickled as `collections.OrderedDict` (what `Module.state_dict()` returns). */
export class OrderedDict<K = PickleWritable, V = PickleWritable> extends Map<K, V> {}

/** A persistent id (`BINPERSID`): the reader's `persistent_load` turns it into an object. */
export class PyPersistent {
  constructor(readonly pid: PickleWritable) {}
}

export type PickleWritable =
  | null
  | boolean
  | number
  | bigint
  | string
  | PyFloat
  | PyTuple
  | PickleWritable[]
  | Map<PickleWritable, PickleWritable>
  | PickleGlobal
  | PickleObject
  | PyPersistent;

const BATCH = 1000; // Python's pickler batches APPENDS/SETITEMS the same way

class Out {
  private buf = new Uint8Array(1024);
  length = 0;
  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }
  byte(...b: number[]): void {
    this.reserve(b.length);
    for (const x of b) this.buf[this.length++] = x;
  }
  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  view(n: number, fill: (dv: DataView) => void): void {
    this.reserve(n);
    fill(new DataView(this.buf.buffer, this.length, n));
    this.length += n;
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

const utf8 = new TextEncoder();

function writeInt(out: Out, v: bigint): void {
  if (v >= 0n && v < 256n)
    out.byte(0x4b, Number(v)); // BININT1
  else if (v >= 0n && v < 65536n) out.view(3, (d) => (d.setUint8(0, 0x4d), d.setUint16(1, Number(v), true)));
  else if (v >= -(2n ** 31n) && v < 2n ** 31n)
    out.view(5, (d) => (d.setUint8(0, 0x4a), d.setInt32(1, Number(v), true))); // BININT
  else {
    // LONG1: two's complement, little-endian, minimal length
    const bytes: number[] = [];
    let x = v;
    for (;;) {
      bytes.push(Number(x & 0xffn));
      const rest = x >> 8n;
      const signOk =
        (rest === 0n && (bytes.at(-1)! & 0x80) === 0) || (rest === -1n && (bytes.at(-1)! & 0x80) !== 0);
      if (signOk) break;
      x = rest;
    }
    out.byte(0x8a, bytes.length, ...bytes);
  }
}

function writeValue(out: Out, v: PickleWritable, path: string): void {
  if (v === null)
    out.byte(0x4e); // NONE
  else if (v === true)
    out.byte(0x88); // NEWTRUE
  else if (v === false)
    out.byte(0x89); // NEWFALSE
  else if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new Error(`pickle: ${path} is ${v}, not an int (floats are PyFloat)`);
    writeInt(out, BigInt(v));
  } else if (typeof v === 'bigint') writeInt(out, v);
  else if (typeof v === 'string') {
    const b = utf8.encode(v);
    out.view(5, (d) => (d.setUint8(0, 0x58), d.setUint32(1, b.length, true))); // BINUNICODE
    out.bytes(b);
  } else if (v instanceof PyFloat)
    out.view(9, (d) => (d.setUint8(0, 0x47), d.setFloat64(1, v.value))); // BINFLOAT
  else if (v instanceof PyTuple) writeTuple(out, v.items, path);
  else if (Array.isArray(v)) {
    out.byte(0x5d); // EMPTY_LIST
    for (let i = 0; i < v.length; i += BATCH) {
      out.byte(0x28); // MARK
      v.slice(i, i + BATCH).forEach((x, k) => writeValue(out, x, `${path}[${i + k}]`));
      out.byte(0x65); // APPENDS
    }
  } else if (v instanceof Map) {
    if (v instanceof OrderedDict) {
      writeGlobal(out, new PickleGlobal('collections', 'OrderedDict'));
      out.byte(0x29, 0x52); // EMPTY_TUPLE REDUCE
    } else out.byte(0x7d); // EMPTY_DICT
    const items = [...v];
    for (let i = 0; i < items.length; i += BATCH) {
      out.byte(0x28);
      for (const [k, x] of items.slice(i, i + BATCH)) {
        writeValue(out, k, `${path} key`);
        writeValue(out, x, `${path}[${typeof k === 'string' ? JSON.stringify(k) : String(k)}]`);
      }
      out.byte(0x75); // SETITEMS
    }
  } else if (v instanceof PickleGlobal) writeGlobal(out, v);
  else if (v instanceof PickleObject) {
    writeGlobal(out, v.callable);
    writeTuple(out, v.args as PickleWritable[], `${path} args`);
    out.byte(0x52); // REDUCE
    if (v.state !== null) {
      writeValue(out, v.state as PickleWritable, `${path} state`);
      out.byte(0x62); // BUILD
    }
  } else if (v instanceof PyPersistent) {
    writeValue(out, v.pid, `${path} persistent id`);
    out.byte(0x51); // BINPERSID
  } else throw new Error(`pickle: ${path} has a type the writer does not know (${typeof v})`);
}

function writeTuple(out: Out, items: readonly PickleWritable[], path: string): void {
  const each = () => items.forEach((x, i) => writeValue(out, x, `${path}[${i}]`));
  if (items.length === 0)
    out.byte(0x29); // EMPTY_TUPLE
  else if (items.length <= 3) {
    each();
    out.byte(0x85 + items.length - 1); // TUPLE1..3
  } else {
    out.byte(0x28);
    each();
    out.byte(0x74); // TUPLE
  }
}

function writeGlobal(out: Out, g: PickleGlobal): void {
  if (/[\n]/.test(g.module + g.name)) throw new Error(`pickle: global ${g.qualifiedName} has a newline`);
  out.byte(0x63); // GLOBAL
  out.bytes(utf8.encode(`${g.module}\n${g.name}\n`));
}

/** Pickles `value` (protocol 2). Throws, naming the path inside `value`, on what it cannot write. */
export function pickle(value: PickleWritable): Uint8Array {
  const out = new Out();
  out.byte(0x80, 2); // PROTO 2
  writeValue(out, value, 'value');
  out.byte(0x2e); // STOP
  return out.result();
}
