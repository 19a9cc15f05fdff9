import { createRequire } from 'node:module';

/**
 * The hot path of the image pipeline: libjpeg-turbo compiled to WebAssembly (@cwasm/jpeg-turbo).
 * A call costs the decode and nothing else, whereas a sharp call costs ~1 ms of pipeline set-up,
 * which dominates at 112×112 (see README, bench:data). Used only for JPEGs already at the training
 * size; everything else (resizing, PNG, CMYK, broken files) goes through sharp.
 */
const { decode } = createRequire(import.meta.url)('@cwasm/jpeg-turbo') as {
  decode: (src: Uint8Array) => { width: number; height: number; data: Uint8ClampedArray };
};

export const isJpeg = (b: Uint8Array): boolean => b.length > 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;

/**
 * The WebAssembly build reports a libjpeg error by throwing through its frames (its longjmp is a
 * JS throw), which leaves a little of its memory unreclaimed. After this many failures in one
 * thread the fast path is switched off there and sharp decodes everything.
 */
const MAX_FAILURES = 32;
let failures = 0;

/** Decoded RGBA pixels, or undefined when this decoder cannot (or no longer should) handle the bytes. */
export function decodeJpegRgba(bytes: Uint8Array): { width: number; height: number; data: Uint8ClampedArray } | undefined {
  if (!isJpeg(bytes) || failures >= MAX_FAILURES) return undefined;
  try {
    return decode(bytes);
  } catch {
    failures++;
    return undefined;
  }
}
