import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { decodeJpegRgba } from './jpeg-fast.js';

// One libvips thread per call: parallelism comes from our worker pool, not from libvips.
sharp.concurrency(1);
sharp.cache(false);

/** Decoded pixels, `channels` interleaved uint8 values per pixel, size×size. */
export interface RawImage {
  data: Uint8Array;
  channels: number;
  size: number;
}

/** Decodes an encoded image (file path or bytes) and resizes it to size×size (aspect not kept, as the release does). */
export async function decodeResize(input: string | Uint8Array, size: number): Promise<RawImage> {
  const { data, info } = await sharp(input, { failOn: 'error' })
    .resize(size, size, { fit: 'fill', kernel: 'cubic' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.width !== size || info.height !== size) {
    throw new Error(`decoded to ${info.width}×${info.height}, expected ${size}×${size}`);
  }
  return { data, channels: info.channels, size };
}

/**
 * Writes one image into `out` at `offset` as NHWC float32 RGB in [-1, 1] (v/127.5 − 1), mirrored
 * left-right when `flip`. Grey images are replicated to RGB; alpha is dropped.
 */
export function toFloatRgb(img: RawImage, flip: boolean, out: Float32Array, offset: number): void {
  const { data, channels: c, size } = img;
  if (data.length !== size * size * c) throw new Error(`raw image has ${data.length} bytes, expected ${size}·${size}·${c}`);
  const grey = c < 3;
  const k = 1 / 127.5;
  for (let y = 0; y < size; y++) {
    const row = y * size;
    for (let x = 0; x < size; x++) {
      const src = (row + (flip ? size - 1 - x : x)) * c;
      const dst = offset + (row + x) * 3;
      if (grey) {
        const v = (data[src] as number) * k - 1;
        out[dst] = v;
        out[dst + 1] = v;
        out[dst + 2] = v;
      } else {
        out[dst] = (data[src] as number) * k - 1;
        out[dst + 1] = (data[src + 1] as number) * k - 1;
        out[dst + 2] = (data[src + 2] as number) * k - 1;
      }
    }
  }
}

/**
 * Reads and decodes one image file into `out` (NHWC float RGB in [-1, 1], mirrored when `flip`).
 * JPEGs already at size×size take the WebAssembly libjpeg-turbo path; anything else, and any file
 * that path rejects, goes through sharp (whose error then names what is wrong). The read is
 * synchronous: this runs in pool threads, where blocking costs less than four thread-pool hops.
 */
export async function loadImageInto(path: string, size: number, flip: boolean, out: Float32Array, offset: number): Promise<void> {
  const bytes = readFileSync(path);
  const fast = decodeJpegRgba(bytes);
  if (fast !== undefined && fast.width === size && fast.height === size) {
    rgbaToFloat(fast.data, size, flip, out, offset);
    return;
  }
  toFloatRgb(await decodeResize(bytes, size), flip, out, offset);
}

/** v ↦ v/127.5 − 1 for every byte value. */
const TO_UNIT = Float32Array.from({ length: 256 }, (_, v) => v / 127.5 - 1);

/** The hot path's conversion (RGBA bytes from the JPEG decoder), kept monomorphic and branch-free per pixel. */
function rgbaToFloat(data: Uint8ClampedArray, size: number, flip: boolean, out: Float32Array, offset: number): void {
  const lut = TO_UNIT;
  for (let y = 0; y < size; y++) {
    let dst = offset + y * size * 3;
    if (flip) {
      for (let src = ((y + 1) * size - 1) * 4, end = y * size * 4; src >= end; src -= 4, dst += 3) {
        out[dst] = lut[data[src] as number] as number;
        out[dst + 1] = lut[data[src + 1] as number] as number;
        out[dst + 2] = lut[data[src + 2] as number] as number;
      }
    } else {
      for (let src = y * size * 4, end = (y + 1) * size * 4; src < end; src += 4, dst += 3) {
        out[dst] = lut[data[src] as number] as number;
        out[dst + 1] = lut[data[src + 1] as number] as number;
        out[dst + 2] = lut[data[src + 2] as number] as number;
      }
    }
  }
}
