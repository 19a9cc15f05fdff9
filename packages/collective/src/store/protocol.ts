import { Packr } from 'msgpackr';
import { framePrefix } from '../transport/frameReader.js';

/** Largest control message the store accepts (bytes); a larger one ends the connection that sent it. */
export const STORE_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/** Largest request before a connection has proved the run token (clients open with a ping). */
export const STORE_MAX_UNAUTHENTICATED_MESSAGE_BYTES = 64 * 1024;
export const STORE_MAX_KEY_LENGTH = 1024;

export const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

/**
 * One request or reply on the wire: the transports' frame (u32 header length, u32 payload length,
 * little-endian) with the msgpack body as header and no payload.
 */
export function encodeStoreFrame(message: StoreRequest | StoreReply): Buffer {
  const body = packr.pack(message);
  return Buffer.concat([framePrefix(body.length, 0), body]);
}

export type StoreOp = 'ping' | 'set' | 'get' | 'tryGet' | 'add' | 'compareSet' | 'wait' | 'delete';

export interface StoreRequest {
  id: number;
  token: string;
  op: StoreOp;
  name?: string;
  key?: string;
  keys?: string[];
  value?: Uint8Array;
  expected?: Uint8Array | null;
  delta?: number;
  waitMs?: number;
}

export interface StoreReply {
  id: number;
  ok: boolean;
  error?: string;
  value?: Uint8Array | null;
  number?: number;
  found?: boolean;
}

const OPS: ReadonlySet<string> = new Set<StoreOp>([
  'ping',
  'set',
  'get',
  'tryGet',
  'add',
  'compareSet',
  'wait',
  'delete',
]);

export function toBytes(value: Uint8Array | string): Uint8Array {
  return typeof value === 'string' ? new TextEncoder().encode(value) : value;
}

function isBytes(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array;
}

function checkKey(k: unknown, field: string): string {
  if (typeof k !== 'string' || k.length === 0 || k.length > STORE_MAX_KEY_LENGTH) {
    throw new Error(
      `field "${field}" must be a non-empty string of at most ${STORE_MAX_KEY_LENGTH} characters`,
    );
  }
  return k;
}

/**
 * Validates a decoded request; throws a message naming the bad field. The id is
 * returned separately so the server can answer even a malformed request.
 */
export function parseRequest(raw: unknown): StoreRequest {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error('request is not a map');
  const r = raw as Record<string, unknown>;
  if (typeof r.id !== 'number' || !Number.isSafeInteger(r.id))
    throw new Error('field "id" must be an integer');
  if (typeof r.token !== 'string') throw new Error('field "token" must be a string');
  if (typeof r.op !== 'string' || !OPS.has(r.op)) throw new Error(`unknown op ${JSON.stringify(r.op)}`);
  const req: StoreRequest = { id: r.id, token: r.token, op: r.op as StoreOp };
  if (typeof r.name === 'string') req.name = r.name;
  switch (req.op) {
    case 'ping':
      break;
    case 'wait':
      if (!Array.isArray(r.keys) || r.keys.length === 0)
        throw new Error('field "keys" must be a non-empty array');
      req.keys = r.keys.map((k, i) => checkKey(k, `keys[${i}]`));
      break;
    default:
      req.key = checkKey(r.key, 'key');
  }
  if (req.op === 'set' || req.op === 'compareSet') {
    if (!isBytes(r.value)) throw new Error('field "value" must be bytes');
    req.value = r.value;
  }
  if (req.op === 'compareSet') {
    if (r.expected !== null && !isBytes(r.expected)) throw new Error('field "expected" must be bytes or nil');
    req.expected = r.expected;
  }
  if (req.op === 'add') {
    if (typeof r.delta !== 'number' || !Number.isSafeInteger(r.delta))
      throw new Error('field "delta" must be an integer');
    req.delta = r.delta;
  }
  if (req.op === 'get' || req.op === 'wait') {
    if (typeof r.waitMs !== 'number' || !(r.waitMs >= 0))
      throw new Error('field "waitMs" must be a number >= 0');
    req.waitMs = r.waitMs;
  }
  return req;
}
