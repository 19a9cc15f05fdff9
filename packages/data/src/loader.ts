import type { Batch, FasBatch } from './batch.js';
import type { Dataset } from './annotations.js';
import type { DistributedSampler } from './sampler.js';
import type { FasTargetSampler } from './fas-sampler.js';
import { ImagePool, type ImagePoolOptions } from './image-pool.js';
import { hash32 } from './rng.js';

export interface BatchLoaderOptions extends ImagePoolOptions {
  dataset: Dataset;
  sampler: DistributedSampler;
  /** Training image size (square). */
  size: number;
  /** Random horizontal flip with p = 0.5 (default true). Decided by (seed, epoch, sample index). */
  flip?: boolean;
  /** Seed of the flips (default: the sampler's seed). */
  seed?: number;
  /** First global iteration to deliver (resume). */
  startIteration?: number;
  /** Whole batches decoded ahead of the consumer (default 4). */
  prefetch?: number;
  /** A missing or undecodable image: 'error' (default) fails the batch naming the file; 'skip' drops it and counts it. */
  onBadImage?: 'error' | 'skip';
  /** With a FAS target sampler every batch also carries target groups and real images of those groups. */
  fas?: FasTargetSampler;
  /** Where the one end-of-run report of skipped images goes (default console.warn). */
  log?: (line: string) => void;
  /** Reuse a pool (then close() does not destroy it). */
  pool?: ImagePool;
}

export class BadImageError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`${file}: cannot load image: ${reason}`);
    this.name = 'BadImageError';
  }
}

/**
 * Delivers the sampler's batches for this rank, decoded in a worker pool with a prefetch queue of
 * whole batches. `next()` resolves batches in iteration order; `iteration` is the global iteration
 * of the batch the next call returns (save it in checkpoints; pass it back as startIteration).
 */
export class BatchLoader {
  private readonly opts: BatchLoaderOptions;
  private readonly pool: ImagePool;
  private readonly ownsPool: boolean;
  private readonly queue: Promise<Loaded>[] = [];
  private nextToSchedule: number;
  private delivered: number;
  private closed = false;
  /** Images skipped so far (onBadImage 'skip'), with the reason. */
  readonly skipped: { file: string; reason: string }[] = [];

  constructor(opts: BatchLoaderOptions) {
    if (opts.dataset.files.length !== opts.sampler.size) {
      throw new RangeError(`BatchLoader: sampler size ${opts.sampler.size} ≠ dataset size ${opts.dataset.files.length} (${opts.dataset.source})`);
    }
    this.opts = opts;
    this.ownsPool = opts.pool === undefined;
    this.pool = opts.pool ?? new ImagePool(opts);
    this.nextToSchedule = opts.startIteration ?? 0;
    this.delivered = this.nextToSchedule;
    this.fill();
  }

  /** Global iteration of the batch the next `next()` returns. */
  get iteration(): number {
    return this.delivered;
  }

  get epoch(): number {
    return this.opts.sampler.position(this.delivered).epoch;
  }

  async next(): Promise<Batch | FasBatch> {
    if (this.closed) throw new Error('BatchLoader: next() after close()');
    this.fill();
    const head = this.queue.shift() as Promise<Loaded>;
    this.delivered++;
    this.fill();
    const { batch, skipped } = await head;
    // Counted on delivery, so prefetched-but-unused batches do not inflate the report.
    this.skipped.push(...skipped);
    return batch;
  }

  /** Stops prefetching and reports skipped images once. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled(this.queue);
    this.queue.length = 0;
    if (this.ownsPool) await this.pool.close();
    if (this.skipped.length > 0) {
      const first = this.skipped.slice(0, 3).map((s) => `${s.file} (${s.reason})`);
      (this.opts.log ?? console.warn)(
        `data: skipped ${this.skipped.length} unreadable image(s): ${first.join('; ')}${this.skipped.length > 3 ? '; …' : ''}`,
      );
    }
  }

  private fill(): void {
    const depth = Math.max(1, this.opts.prefetch ?? 4);
    while (!this.closed && this.queue.length < depth) {
      const p = this.load(this.nextToSchedule++);
      p.catch(() => {}); // surfaced by next(); avoids an unhandled rejection while queued
      this.queue.push(p);
    }
  }

  private async load(iteration: number): Promise<Loaded> {
    const { sampler, fas } = this.opts;
    const indices = sampler.batch(iteration);
    const { epoch } = sampler.position(iteration);
    if (fas === undefined) return this.loadIndices(indices, epoch);
    const t = fas.sample(indices.length, iteration, sampler.rank);
    // A skipped image drops the sample together with its target (and real image), keeping them aligned.
    const [src, real] = await Promise.all([this.loadIndices(indices, epoch), this.loadIndices(t.realIndices, epoch, 0x7ea1)]);
    const both = src.kept.filter((k) => real.kept.includes(k));
    const batch = both.length === src.kept.length ? src.batch : subset(src.batch, src.kept, both);
    const realBatch = both.length === real.kept.length ? real.batch : subset(real.batch, real.kept, both);
    const targetGroups = Int32Array.from(both, (k) => t.targetGroups[k] as number);
    return { batch: { ...batch, targetGroups, real: realBatch } satisfies FasBatch, skipped: [...src.skipped, ...real.skipped], kept: both };
  }

  /** Decodes the given dataset indices into a Batch. */
  private async loadIndices(indices: Int32Array, epoch: number, salt = 0): Promise<Loaded> {
    const { dataset, size } = this.opts;
    const seed = this.opts.seed ?? this.opts.sampler.seed;
    const flipOn = this.opts.flip ?? true;
    const files = Array.from(indices, (i) => dataset.files[i] as string);
    const flips = Uint8Array.from(indices, (i) => (flipOn ? hash32(seed, epoch, i, salt) & 1 : 0));
    // With `prefetch` batches in flight the threads are busy anyway: split a batch only as far as
    // needed to give every thread work.
    const tasks = Math.ceil(this.pool.threads / Math.max(1, this.opts.prefetch ?? 4));
    const { images, errors } = await this.pool.decode(dataset.root, files, size, flips, { tasks });
    const bad = errors.flatMap((e, k) => (e === '' ? [] : [k]));
    if (bad.length > 0 && (this.opts.onBadImage ?? 'error') === 'error') {
      const k = bad[0] as number;
      throw new BadImageError(`${dataset.root}/${files[k]}`, errors[k] as string);
    }
    const skipped = bad.map((k) => ({ file: `${dataset.root}/${files[k]}`, reason: errors[k] as string }));
    const keep = [...indices.keys()].filter((k) => errors[k] === '');
    const per = size * size * 3;
    let out = images;
    if (bad.length > 0) {
      out = new Float32Array(keep.length * per);
      keep.forEach((k, j) => out.set(images.subarray(k * per, (k + 1) * per), j * per));
    }
    const pick = (k: number): number => indices[k] as number;
    const batch: Batch = {
      n: keep.length,
      size,
      images: out,
      labels: Int32Array.from(keep, (k) => dataset.labels[pick(k)] as number),
      ages: Float32Array.from(keep, (k) => dataset.ages[pick(k)] as number),
      groups: Int32Array.from(keep, (k) => dataset.groups[pick(k)] as number),
      genders: Int32Array.from(keep, (k) => dataset.genders[pick(k)] as number),
    };
    return { batch, skipped, kept: keep };
  }
}

interface Loaded {
  batch: Batch | FasBatch;
  skipped: { file: string; reason: string }[];
  /** Positions (in the requested index list) that made it into the batch. */
  kept: number[];
}

/** The samples of `b` (whose rows are the positions `have`) at the positions `want` ⊆ have. */
function subset(b: Batch, have: number[], want: number[]): Batch {
  const row = new Map(have.map((k, j) => [k, j]));
  const rows = want.map((k) => row.get(k) as number);
  const per = b.size * b.size * 3;
  const images = new Float32Array(rows.length * per);
  rows.forEach((r, j) => images.set(b.images.subarray(r * per, (r + 1) * per), j * per));
  return {
    n: rows.length,
    size: b.size,
    images,
    labels: Int32Array.from(rows, (r) => b.labels[r] as number),
    ages: Float32Array.from(rows, (r) => b.ages[r] as number),
    groups: Int32Array.from(rows, (r) => b.groups[r] as number),
    genders: Int32Array.from(rows, (r) => b.genders[r] as number),
  };
}
