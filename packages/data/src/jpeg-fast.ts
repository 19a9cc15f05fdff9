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

/** Decoded RGBA pixels, or undefined when this decoder cannot handle the bytes. */
export function decodeJpegRgba(bytes: Uint8Array): { width: number; height: number; data: Uint8ClampedArray } | undefined {
  if (!isJpeg(bytes)) return undefined;
  try {
    return decode(bytes);
  } catch {
    return undefined;
  }
}
