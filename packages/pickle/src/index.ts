/**
 * A Python pickle reader (protocols 2–5) that never executes anything: globals are resolved through
 * the caller's table (`findClass`), persistent ids through `persistentLoad`; what the table leaves
 * unresolved stays an opaque {@link PickleGlobal}/{@link PickleObject}. Every error names the
 * source and the byte offset of the opcode.
 */

export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PickleValue[]
  | Map<PickleValue, PickleValue>
  | PickleGlobal
  | PickleObject
  | object;

/** A `module.name` global that the table did not resolve. */
export class PickleGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/** The result of calling an unresolved global: kept opaque. */
export class PickleObject {
  state: PickleValue = null;
  constructor(
    readonly callable: PickleGlobal,
    readonly args: PickleValue[],
  ) {}
}

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

export interface UnpickleOptions {
  /**
   * Resolves `module.name` to a callable (REDUCE, NEWOBJ) or a value; undefined keeps it opaque.
   * Throw to refuse a global: the error becomes a PickleError at its opcode reading
   * `global module.name <message>` (e.g. throw 'is not allowed').
   */
  findClass?: (module: string, name: string) => unknown;
  persistentLoad?: (pid: PickleValue) => PickleValue;
  /** Names the source in errors. */
  where?: string;
}

const MARK = Symbol('mark');
type Item = PickleValue | typeof MARK;

export function unpickle(bytes: Uint8Array, options: UnpickleOptions = {}): PickleValue {
  const where = options.where ?? '<pickle>';
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  let op = 0;
  const stack: Item[] = [];
  const memo = new Map<number, Item>();
  const fail = (reason: string): never => {
    throw new PickleError(where, op, reason);
  };
  /** Runs a caller's hook; its errors become PickleErrors at this opcode, reading `${what} ${message}`. */
  const guarded = <T>(what: string, f: () => T): T => {
    try {
      return f();
    } catch (err) {
      if (err instanceof PickleError) throw err;
      return fail(`${what} ${(err as Error).message}`);
    }
  };
  const need = (n: number): void => {
    if (pos + n > bytes.length)
      fail(`truncated: opcode needs ${n} more byte(s), file ends at ${bytes.length}`);
  };
  const u8 = (): number => (need(1), bytes[pos++]!);
  const u16 = (): number => (need(2), (pos += 2), dv.getUint16(pos - 2, true));
  const u32 = (): number => (need(4), (pos += 4), dv.getUint32(pos - 4, true));
  const i32 = (): number => (need(4), (pos += 4), dv.getInt32(pos - 4, true));
  const u64 = (): number => {
    need(8);
    const v = dv.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`length ${v} too large`);
    return Number(v);
  };
  // A plain Uint8Array view (not a Buffer, when a Buffer was passed): no copy.
  const take = (n: number): Uint8Array => {
    need(n);
    pos += n;
    return new Uint8Array(bytes.buffer, bytes.byteOffset + pos - n, n);
  };
  const utf8 = (b: Uint8Array): string => {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(b);
    } catch {
      return fail('text that is not UTF-8');
    }
  };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail('truncated: newline expected');
    const s = utf8(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const value = (v: Item | undefined): PickleValue => {
    if (v === undefined) return fail('stack underflow');
    if (v === MARK) return fail('MARK where a value was expected');
    return v;
  };
  const pop = (): PickleValue => value(stack.pop());
  const top = (): PickleValue => value(stack[stack.length - 1]);
  const popMark = (): PickleValue[] => {
    const k = stack.lastIndexOf(MARK);
    if (k < 0) fail('no MARK on the stack');
    const items = stack.splice(k);
    items.shift();
    return items as PickleValue[];
  };
  const list = (what: string): PickleValue[] => {
    const l = top();
    if (!Array.isArray(l)) fail(`${what} on something that is not a list`);
    return l as PickleValue[];
  };
  const setItems = (target: PickleValue, items: PickleValue[]): void => {
    if (!(target instanceof Map)) fail('SETITEM(S) on something that is not a dict');
    for (let i = 0; i + 1 < items.length; i += 2)
      (target as Map<PickleValue, PickleValue>).set(items[i]!, items[i + 1]!);
  };
  const resolve = (module: string, name: string): PickleValue =>
    guarded(`global ${module}.${name}`, () => options.findClass?.(module, name) as PickleValue | undefined) ??
    new PickleGlobal(module, name);
  const call = (fn: PickleValue, args: PickleValue): PickleValue => {
    const a = Array.isArray(args) ? args : [args];
    if (typeof fn === 'function')
      return guarded('call failed:', () => (fn as (...x: PickleValue[]) => PickleValue)(...a));
    if (fn instanceof PickleGlobal) return new PickleObject(fn, a);
    return fail('REDUCE of something that is not callable');
  };
  const longLE = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };

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
        return pop();
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(longLE(take(u8())));
        break;
      case 0x8b: // LONG4
        stack.push(longLE(take(u32())));
        break;
      case 0x47: // BINFLOAT (big-endian)
        need(8);
        stack.push(dv.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x58: // BINUNICODE
        stack.push(utf8(take(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(utf8(take(u8())));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(utf8(take(u64())));
        break;
      case 0x43: // SHORT_BINBYTES
      case 0x55: // SHORT_BINSTRING (Python 2 str = bytes)
        stack.push(take(u8()));
        break;
      case 0x42: // BINBYTES
      case 0x54: // BINSTRING
        stack.push(take(u32()));
        break;
      case 0x8e: // BINBYTES8
        stack.push(take(u64()));
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
      case 0x29: // EMPTY_TUPLE
      case 0x8f: // EMPTY_SET
        stack.push([]);
        break;
      case 0x74: // TUPLE
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x85:
      case 0x86:
      case 0x87: {
        // TUPLE1..3
        const items: PickleValue[] = [];
        for (let i = 0; i < code - 0x84; i++) items.unshift(pop());
        stack.push(items);
        break;
      }
      case 0x64: {
        // DICT
        const m = new Map<PickleValue, PickleValue>();
        setItems(m, popMark());
        stack.push(m);
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop();
        list('APPEND').push(v);
        break;
      }
      case 0x65: // APPENDS
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        list(code === 0x65 ? 'APPENDS' : 'ADDITEMS').push(...items);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS (the items first: the dict is below the MARK)
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const k = code === 0x68 ? u8() : u32();
        if (!memo.has(k)) fail(`memo key ${k} not defined`);
        stack.push(memo.get(k)!);
        break;
      }
      case 0x63: {
        // GLOBAL
        const module = line();
        stack.push(resolve(module, line()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        stack.push(resolve(String(module), String(name)));
        break;
      }
      case 0x52: // REDUCE
      case 0x81: {
        // NEWOBJ
        const args = pop();
        const fn = pop();
        stack.push(call(fn, args));
        break;
      }
      case 0x62: {
        // BUILD: set state; dict attributes (e.g. a state dict's _metadata) are irrelevant here
        const state = pop();
        const obj = top();
        if (obj instanceof PickleObject) obj.state = state;
        break;
      }
      case 0x51: {
        // BINPERSID
        const pid = pop();
        const load = options.persistentLoad;
        if (!load) fail('persistent id without a loader');
        stack.push(guarded('persistent id:', () => load!(pid)));
        break;
      }
      case 0x30: // POP
        pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      default:
        fail(`unsupported pickle opcode 0x${code.toString(16).padStart(2, '0')}`);
    }
  }
}
export * from './writer.js';
