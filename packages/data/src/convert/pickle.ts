/**
 * A minimal, safe pickle reader for insightface verification sets: protocols 2–4, values limited
 * to bytes (and Python 2 strings, read as bytes), text, small ints, bools, None, lists and tuples.
 * The two globals that Python 3 emits for bytes under protocol 2 (`_codecs.encode(s, 'latin1')`,
 * `bytes()`) are evaluated; any other global or opcode is rejected with its byte offset.
 */

export type PickleValue = Uint8Array | string | number | boolean | null | PickleValue[] | { tuple: PickleValue[] };

export class PickleError extends Error {
  constructor(
    readonly file: string,
    readonly offset: number,
    reason: string,
  ) {
    super(`${file}: byte offset ${offset}: ${reason}`);
    this.name = 'PickleError';
  }
}

const MARK = Symbol('mark');
interface Global {
  global: string;
}
type Item = PickleValue | typeof MARK | Global;

const isGlobal = (x: unknown): x is Global => typeof x === 'object' && x !== null && 'global' in x;

export function readPickle(buf: Uint8Array, file = '<pickle>'): PickleValue {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const stack: Item[] = [];
  const memo = new Map<number, Item>();
  let pos = 0;
  let op = 0;
  const fail = (reason: string, at = op): never => {
    throw new PickleError(file, at, reason);
  };
  const need = (n: number): void => {
    if (pos + n > buf.length) fail(`truncated: opcode needs ${n} more byte(s), file ends at ${buf.length}`);
  };
  const u8 = (): number => {
    need(1);
    return buf[pos++] as number;
  };
  const u32 = (): number => {
    need(4);
    const v = dv.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = (): number => {
    need(8);
    const v = dv.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`length ${v} too large`);
    return Number(v);
  };
  const bytes = (n: number): Uint8Array => {
    need(n);
    // A plain Uint8Array view (not a Buffer, when a Buffer was passed): no copy.
    const b = new Uint8Array(buf.buffer, buf.byteOffset + pos, n);
    pos += n;
    return b;
  };
  const line = (): string => {
    const end = buf.indexOf(0x0a, pos);
    if (end < 0) fail('truncated: newline expected');
    const s = new TextDecoder().decode(buf.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = (): Item => {
    if (stack.length === 0) fail('stack underflow');
    return stack.pop() as Item;
  };
  const popMark = (): PickleValue[] => {
    const k = stack.lastIndexOf(MARK);
    if (k < 0) fail('no MARK on the stack');
    const items = stack.splice(k);
    items.shift();
    return items.map((x) => value(x));
  };
  const value = (x: Item): PickleValue => {
    if (x === MARK || isGlobal(x)) return fail('unsupported object in the pickle');
    return x as PickleValue;
  };
  const top = (): PickleValue[] => {
    const l = stack[stack.length - 1];
    if (!Array.isArray(l)) return fail('APPEND to something that is not a list');
    return l as PickleValue[];
  };
  const utf8 = (b: Uint8Array): string => new TextDecoder('utf-8', { fatal: true }).decode(b);

  for (;;) {
    op = pos;
    const code = u8();
    switch (code) {
      case 0x80: // PROTO
        if (u8() > 5) fail('unsupported protocol');
        break;
      case 0x95: // FRAME
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1) fail(`STOP with ${stack.length} items on the stack`);
        return value(stack[0] as Item);
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push({ tuple: [] });
        break;
      case 0x61: {
        // APPEND
        const v = value(pop());
        top().push(v);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        top().push(...items);
        break;
      }
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x74: // TUPLE
        stack.push({ tuple: popMark() });
        break;
      case 0x85:
      case 0x86:
      case 0x87: {
        // TUPLE1..3
        const n = code - 0x84;
        const items: PickleValue[] = [];
        for (let i = 0; i < n; i++) items.unshift(value(pop()));
        stack.push({ tuple: items });
        break;
      }
      case 0x43: // SHORT_BINBYTES
      case 0x55: // SHORT_BINSTRING (Python 2 str = bytes)
        stack.push(bytes(u8()));
        break;
      case 0x42: // BINBYTES
      case 0x54: // BINSTRING
        stack.push(bytes(u32()));
        break;
      case 0x8e: // BINBYTES8
        stack.push(bytes(u64()));
        break;
      case 0x58: // BINUNICODE
        stack.push(utf8(bytes(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(utf8(bytes(u8())));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(utf8(bytes(u64())));
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: {
        // BININT2
        need(2);
        stack.push(dv.getUint16(pos, true));
        pos += 2;
        break;
      }
      case 0x4a: {
        // BININT
        need(4);
        stack.push(dv.getInt32(pos, true));
        pos += 4;
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), stack[stack.length - 1] as Item);
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), stack[stack.length - 1] as Item);
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, stack[stack.length - 1] as Item);
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const k = code === 0x68 ? u8() : u32();
        if (!memo.has(k)) fail(`memo key ${k} not defined`);
        stack.push(memo.get(k) as Item);
        break;
      }
      case 0x63: {
        // GLOBAL
        const g = `${line()}.${line()}`;
        if (!['_codecs.encode', '__builtin__.bytes', 'builtins.bytes'].includes(g)) fail(`global ${g} is not allowed`);
        stack.push({ global: g });
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const mod = pop();
        const g = `${String(mod)}.${String(name)}`;
        if (!['_codecs.encode', 'builtins.bytes'].includes(g)) fail(`global ${g} is not allowed`);
        stack.push({ global: g });
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = pop();
        if (!isGlobal(fn) || typeof args !== 'object' || args === null || !('tuple' in args)) fail('REDUCE of an unsupported callable');
        const a = (args as { tuple: PickleValue[] }).tuple;
        const g = (fn as Global).global;
        if (g === '_codecs.encode' && typeof a[0] === 'string' && a[1] === 'latin1') {
          stack.push(Uint8Array.from(a[0], (ch) => ch.charCodeAt(0)));
        } else if (g.endsWith('.bytes') && a.length === 0) {
          stack.push(new Uint8Array(0));
        } else {
          fail(`unsupported call ${g}(${a.length} args)`);
        }
        break;
      }
      default:
        fail(`unsupported pickle opcode 0x${code.toString(16).padStart(2, '0')}`);
    }
  }
}
