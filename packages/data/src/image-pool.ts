import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import type { DecodeResult, DecodeTask } from './decode-worker.js';

// From source (tsx) the worker is the .ts file next to this one; from dist it is the .js file.
const WORKER = new URL(`./decode-worker.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url).href;

export interface ImagePoolOptions {
  /** Worker threads (default: available cores). */
  threads?: number;
  /** Decodes kept in flight per thread (sharp's per-call overhead overlaps with other calls; default 4). */
  inFlight?: number;
}

export interface DecodedImages {
  /** n·size·size·3 floats, NHWC in [-1, 1]; entries of failed images are zero. */
  images: Float32Array;
  /** Per image: '' when decoded, else why it failed. */
  errors: string[];
}

/** A pool of worker threads (piscina) that turns image files into float NHWC tensors data. */
export class ImagePool {
  readonly threads: number;
  private readonly pool: Piscina<DecodeTask, DecodeResult>;
  private readonly inFlight: number;

  constructor(opts: ImagePoolOptions = {}) {
    this.threads = Math.max(1, opts.threads ?? availableParallelism());
    this.inFlight = Math.max(1, opts.inFlight ?? 4);
    this.pool = new Piscina<DecodeTask, DecodeResult>({
      filename: WORKER,
      minThreads: this.threads,
      maxThreads: this.threads,
      idleTimeout: 60_000,
    });
  }

  /**
   * Decodes `files` (relative to `root` unless absolute), resized to size×size, mirrored where
   * `flips[i]` is 1. The work is split into `tasks` pool tasks (default: one per thread, so a lone
   * call uses every thread); callers that keep several calls in flight pass fewer and save the
   * copy that joins the parts.
   */
  async decode(
    root: string,
    files: readonly string[],
    size: number,
    flips?: Uint8Array,
    opts: { tasks?: number } = {},
  ): Promise<DecodedImages> {
    const n = files.length;
    const f = flips ?? new Uint8Array(n);
    const tasks = Math.max(1, Math.min(this.threads, opts.tasks ?? this.threads));
    const chunk = Math.max(1, Math.ceil(n / tasks));
    const running: Promise<DecodeResult>[] = [];
    for (let s = 0; s < n; s += chunk) {
      const e = Math.min(n, s + chunk);
      running.push(this.pool.run({ root, files: files.slice(s, e), flips: f.slice(s, e), size, inFlight: this.inFlight }));
    }
    const parts = await Promise.all(running);
    if (parts.length === 1) return parts[0] as DecodeResult;
    const per = size * size * 3;
    const images = new Float32Array(n * per);
    const errors: string[] = [];
    parts.forEach((p, k) => {
      images.set(p.images, k * chunk * per);
      errors.push(...p.errors);
    });
    return { images, errors };
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
