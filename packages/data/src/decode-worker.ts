// Piscina worker: decodes a chunk of images into one transferable Float32Array.
import { isAbsolute, join } from 'node:path';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { loadImageInto } from './image.js';

export interface DecodeTask {
  root: string;
  files: string[];
  /** 1 = mirror this image. */
  flips: Uint8Array;
  size: number;
  /** How many decodes to keep in flight inside this thread. */
  inFlight: number;
}

export interface DecodeResult {
  images: Float32Array;
  /** Per image: '' when decoded, else the reason it failed. */
  errors: string[];
}

export default async function decode(task: DecodeTask): Promise<DecodeResult> {
  const { root, files, flips, size } = task;
  const per = size * size * 3;
  const images = new Float32Array(files.length * per);
  const errors = new Array<string>(files.length).fill('');
  let next = 0;
  const lane = async (): Promise<void> => {
    for (let i = next++; i < files.length; i = next++) {
      const f = files[i] as string;
      try {
        await loadImageInto(isAbsolute(f) ? f : join(root, f), size, flips[i] === 1, images, i * per);
      } catch (err) {
        errors[i] = (err as Error).message || String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, task.inFlight) }, lane));
  // Transfer the pixel buffer instead of copying it back to the loader thread.
  const result = {
    get [transferableSymbol]() {
      return [images.buffer];
    },
    get [valueSymbol]() {
      return { images, errors };
    },
  };
  return move(result) as unknown as DecodeResult;
}
