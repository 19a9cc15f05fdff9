/**
 * The pickle reader for insightface verification sets (`lfw.bin`, `agedb_30.bin`, …): @mtlface/pickle
 * with a table that evaluates only the two globals Python 3 emits for bytes under protocol 2
 * (`_codecs.encode(s, 'latin1')`, `bytes()`); any other global is refused with its byte offset.
 */
import { PickleError, unpickle, type PickleValue } from '@mtlface/pickle';

export { PickleError, type PickleValue };

function latin1Bytes(s: PickleValue, encoding: PickleValue): Uint8Array {
  if (typeof s !== 'string' || encoding !== 'latin1') throw new Error("_codecs.encode only as (str, 'latin1')");
  return Uint8Array.from(s, (ch) => ch.charCodeAt(0));
}

function emptyBytes(...args: PickleValue[]): Uint8Array {
  if (args.length !== 0) throw new Error('bytes() only without arguments');
  return new Uint8Array(0);
}

/** Reads a verification-set pickle: lists and tuples come back as arrays, bytes as Uint8Array views. */
export function readPickle(buf: Uint8Array, file = '<pickle>'): PickleValue {
  return unpickle(buf, {
    where: file,
    findClass: (module, name) => {
      if (module === '_codecs' && name === 'encode') return latin1Bytes;
      if ((module === 'builtins' || module === '__builtin__') && name === 'bytes') return emptyBytes;
      throw new Error('is not allowed');
    },
  });
}
