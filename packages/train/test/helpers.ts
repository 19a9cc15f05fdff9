import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, after } from 'node:test';
import { initBackend } from '@mtlface/backend';
import { initProcessGroup, StoreServer, type ProcessGroup } from '@mtlface/collective';
import type { Batch, FasBatch } from '@mtlface/data';
import { loadConfig, type TrainConfig } from '../src/config.js';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));

/** The demo design at test size (tiny widths, 16 px): overrides of configs/demo.yaml, also used by test/. */
export const TINY_MODEL = [
  'model.arch={units: [1, 1, 1, 1], widths: [16, 16, 16, 16]}',
  'model.input_size=16',
  'model.embedding_dim=16',
  'model.generator_units=8',
  'model.discriminator_dim=8',
  'model.discriminator_repeat=2',
  'data.batch_size=4',
];

export function tinyConfig(overrides: string[] = []): TrainConfig {
  return loadConfig(join(REPO, 'configs/demo.yaml'), [...TINY_MODEL, ...overrides]);
}

/** `worldSize` process groups of one run, all in this process, on the store at 127.0.0.1:`storePort` (token 't'). */
export function localGroups(storePort: number, runId: string, worldSize = 2): Promise<ProcessGroup[]> {
  return Promise.all(
    Array.from({ length: worldSize }, (_, rank) =>
      initProcessGroup({
        rank,
        worldSize,
        store: { host: '127.0.0.1', port: storePort, token: 't' },
        runId,
        timeoutMs: 60_000,
      }),
    ),
  );
}

/** For this file's tests: the backend ('auto') and a rendezvous store on 127.0.0.1 (token 't'). */
export function withStore(): { port(): number } {
  let store: StoreServer | null = null;
  before(async () => {
    await initBackend({ backend: 'auto', log: () => {} });
    store = await StoreServer.listen({ host: '127.0.0.1', port: 0, token: 't' });
  });
  after(async () => {
    await store?.close();
  });
  return {
    port: () => {
      if (!store) throw new Error('withStore: the store is not started (called outside a test?)');
      return store.port;
    },
  };
}

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** A deterministic random batch (FasBatch: targets and real images included). */
export function randomBatch(n: number, size: number, classes: number, seed: number, groups = 7): FasBatch {
  const r = lcg(seed);
  const mk = (): Batch => {
    const ages = Float32Array.from({ length: n }, () => Math.floor(r() * 80));
    return {
      n,
      size,
      images: Float32Array.from({ length: n * size * size * 3 }, () => r() * 2 - 1),
      labels: Int32Array.from({ length: n }, () => Math.floor(r() * classes)),
      ages,
      groups: Int32Array.from(ages, (a) => Math.min(groups - 1, Math.max(0, Math.ceil(a / 10) - 1))),
      genders: Int32Array.from({ length: n }, () => (r() < 0.5 ? 0 : 1)),
    };
  };
  const b = mk();
  return { ...b, targetGroups: Int32Array.from({ length: n }, () => Math.floor(r() * groups)), real: mk() };
}

/** Rows [from, to) of a batch (FAS parts included). */
export function sliceBatch(b: FasBatch, from: number, to: number): FasBatch {
  const per = b.size * b.size * 3;
  const cut = (x: Batch): Batch => ({
    n: to - from,
    size: x.size,
    images: x.images.slice(from * per, to * per),
    labels: x.labels.slice(from, to),
    ages: x.ages.slice(from, to),
    groups: x.groups.slice(from, to),
    genders: x.genders.slice(from, to),
  });
  return { ...cut(b), targetGroups: b.targetGroups.slice(from, to), real: cut(b.real) };
}
