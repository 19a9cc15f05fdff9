// Training configuration: one YAML file per recipe, validated once at the edge, then a plain typed object.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { BACKBONE_ARCHS, type BackboneArch } from '@mtlface/model/presets';

const positiveInt = z.number().int().positive();
const nonNegative = z.number().nonnegative();

const archSchema = z.union([
  // Every preset of the backbone table, so a new preset needs no edit here.
  z.enum(BACKBONE_ARCHS as [BackboneArch, ...BackboneArch[]]),
  z
    .object({
      units: z.array(positiveInt).length(4),
      widths: z.array(positiveInt).length(4),
      se: z.boolean().default(false),
    })
    .strict(),
]);

export const configSchema = z
  .object({
    name: z.string().default('mtlface'),
    mode: z.enum(['aifr', 'fas', 'joint']),
    seed: z.number().int().nonnegative().default(0),
    backend: z.enum(['auto', 'tensorflow', 'webgpu', 'native', 'wasm', 'cpu']).default('auto'),
    iterations: positiveInt,
    model: z
      .object({
        arch: archSchema,
        input_size: positiveInt.refine((n) => n % 16 === 0, 'must be a multiple of 16'),
        groups: z.union([z.literal(4), z.literal(5), z.literal(6), z.literal(7), z.literal(8)]).default(7),
        embedding_dim: positiveInt.default(512),
        /** Width of the generator's router units (the release: 128); the demo shrinks it. */
        generator_units: positiveInt.default(128),
        /** PatchGAN base width and depth (the release: 64, 4); small inputs need fewer layers. */
        discriminator_dim: positiveInt.default(64),
        discriminator_repeat: positiveInt.default(4),
        dropout: z.number().min(0).max(1).default(0.5),
      })
      .strict(),
    data: z
      .object({
        root: z.string().min(1),
        train_list: z.string().min(1),
        batch_size: positiveInt,
        flip: z.boolean().default(true),
        loader_threads: positiveInt.default(2),
        prefetch: positiveInt.default(2),
      })
      .strict(),
    cosface: z
      .object({ s: z.number().positive().default(64), m: nonNegative.default(0.35) })
      .strict()
      .default({}),
    fr_optim: z
      .object({
        lr: z.number().positive(),
        momentum: z.number().min(0).max(1).default(0.9),
        weight_decay: nonNegative.default(5e-4),
        warmup: z.number().int().nonnegative().default(1000),
        milestones: z.array(z.number().int().nonnegative()).default([20000, 23000]),
        gamma: z.number().positive().default(0.1),
        min_lr: nonNegative.default(1e-4),
      })
      .strict(),
    fas_optim: z
      .object({
        lr: z.number().positive().default(1e-4),
        betas: z.tuple([z.number().min(0).max(1), z.number().min(0).max(1)]).default([0.5, 0.99]),
        eps: z.number().positive().default(1e-8),
        /** The release's --d_lr / --g_lr: per-network learning rates (null: `lr`). */
        d_lr: z.number().positive().nullable().default(null),
        g_lr: z.number().positive().nullable().default(null),
      })
      .strict()
      .default({}),
    loss: z
      .object({
        /**
         * Weight of the CosFace identity loss (the release has no flag for it: always 1). 0 trains the
         * backbone for age alone, the plain age estimator of EXPERIMENTS.md's amendment 2.
         */
        fr_id: nonNegative.default(1),
        fr_age: nonNegative.default(0.001),
        fr_da: nonNegative.default(0.002),
        fas_gan: nonNegative.default(75),
        fas_id: nonNegative.default(0.002),
        fas_age: nonNegative.default(10),
      })
      .strict()
      .default({}),
    amp: z.boolean().default(true),
    wire: z.enum(['f32', 'f16', 'bf16']).default('f16'),
    loss_scale: z
      .object({
        init: z.number().positive().default(65536),
        growth_interval: positiveInt.default(2000),
        growth_factor: z.number().gt(1).default(2),
        backoff_factor: z.number().gt(0).lt(1).default(0.5),
      })
      .strict()
      .default({}),
    bucket_mb: z.number().positive().default(25),
    checkpoint_interval: positiveInt.default(1000),
    checkpoint_dir: z.string().min(1).default('runs/checkpoints'),
    keep_checkpoints: positiveInt.default(2),
    /** FAS / joint: start the backbone and age estimator from this AIFR checkpoint (directory or .safetensors). */
    init_checkpoint: z.string().nullable().default(null),
    /** true: resume from the newest usable checkpoint or fail; 'auto': resume if one is usable, else start. */
    resume: z.union([z.boolean(), z.literal('auto')]).default(false),
    /** Config keys (dotted) that may differ from the resumed checkpoint's config. */
    resume_override: z.array(z.string().min(1)).default([]),
    /** The FAS step's age estimator: 'train' (batch statistics, as the release) or 'eval' (the paper's frozen net). */
    fas_estimator: z.enum(['train', 'eval']).default('train'),
    /** Per-iteration losses as JSON lines (null: `<checkpoint_dir>/losses.jsonl`). */
    losses_file: z.string().min(1).nullable().default(null),
    /** Compatibility with the MTLFace release's files and schedule (DESIGN.md). */
    release: z
      .object({
        /** The release's `save_models` directory (`<module>-<iter>` torch.save files); null: not used. */
        save_models: z.string().min(1).nullable().default(null),
        /** Continue from `<save_models>/<module>-<restore_iter>` (0: start fresh, as the release). */
        restore_iter: z.number().int().nonnegative().default(0),
        /** Backbone / age-estimator state dicts (torch.save) to start from, as --id/--age_pretrained_path. */
        id_pretrained_path: z.string().min(1).nullable().default(null),
        age_pretrained_path: z.string().min(1).nullable().default(null),
        /** Train at a constant learning rate, as the release as published does (it never calls its schedule). */
        constant_lr: z.boolean().default(false),
      })
      .strict()
      .default({}),
    log_interval: positiveInt.default(50),
    /** Stop after this iteration (for tests and benchmarks); the schedule still follows `iterations`. */
    stop_at: positiveInt.nullable().default(null),
    /** Evaluate `val_pairs` every this many iterations and at the end (0 = never). */
    val_interval: z.number().int().nonnegative().default(0),
    /** Pairs lists (`mtl-data synth` / `from-bin` format) to evaluate; the set is named after the file. */
    val_pairs: z.array(z.string().min(1)).default([]),
    /** Images per embedding batch during validation. */
    val_batch_size: positiveInt.default(64),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.val_interval > 0 && c.val_pairs.length === 0) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['val_pairs'],
        message: `val_interval is ${c.val_interval} but no pairs file is listed (set val_interval=0 to turn validation off)`,
      });
    }
  });

export type TrainConfig = z.infer<typeof configSchema>;
export type TrainMode = TrainConfig['mode'];

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses a `key.path=value` override; the value is YAML (numbers, booleans, lists, null), else a string. */
export function parseOverride(arg: string): { path: string[]; value: unknown } {
  const eq = arg.indexOf('=');
  if (eq <= 0) throw new ConfigError(`override "${arg}": expected key=value (e.g. fr_optim.lr=0.05)`);
  const key = arg.slice(0, eq).trim();
  const raw = arg.slice(eq + 1);
  const path = key.split('.');
  if (path.some((p) => p === '')) throw new ConfigError(`override "${arg}": empty segment in key "${key}"`);
  let value: unknown;
  try {
    value = raw === '' ? '' : parseYaml(raw);
  } catch {
    value = raw;
  }
  return { path, value };
}

function applyOverride(target: Record<string, unknown>, path: string[], value: unknown, arg: string): void {
  let node: Record<string, unknown> = target;
  for (const [i, seg] of path.slice(0, -1).entries()) {
    const next = node[seg];
    if (next === undefined || next === null) {
      node[seg] = {};
    } else if (typeof next !== 'object' || Array.isArray(next)) {
      throw new ConfigError(`override "${arg}": "${path.slice(0, i + 1).join('.')}" is not a section`);
    }
    node = node[seg] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

/** Applies `key=value` overrides to a raw config object in place (later ones win). */
export function applyOverrides(obj: Record<string, unknown>, overrides: readonly string[]): void {
  for (const arg of overrides) {
    const { path, value } = parseOverride(arg);
    applyOverride(obj, path, value, arg);
  }
}

function describeIssues(err: z.ZodError, source: string): string {
  return err.issues
    .map((issue) => {
      const key = issue.path.join('.') || '(root)';
      if (issue.code === 'unrecognized_keys') {
        const keys = issue.keys.map((k) => (issue.path.length ? `${key}.${k}` : k));
        return `${source}: unknown key ${keys.map((k) => `"${k}"`).join(', ')}`;
      }
      return `${source}: key "${key}": ${issue.message}`;
    })
    .join('\n');
}

/** Validates an already-parsed object; `source` names the file in error messages. */
export function validateConfig(raw: unknown, source = 'config'): TrainConfig {
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(describeIssues(parsed.error, source));
  return parsed.data;
}

/** Reads a YAML config, applies `key=value` overrides (later ones win), validates. */
/** A mapping read from a YAML file, with its `extends:` chain merged in (the child's keys win). */
function readConfigTree(file: string, chain: readonly string[] = []): Record<string, unknown> {
  if (chain.includes(file)) throw new ConfigError(`${file}: extends itself through ${chain.join(' → ')}`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const via = chain.length ? ` (extended by ${chain[chain.length - 1]})` : '';
    throw new ConfigError(`${file}${via}: cannot read config (${(err as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text, { prettyErrors: true });
  } catch (err) {
    if (err instanceof YAMLParseError) {
      const pos = err.linePos?.[0];
      const where = pos ? `:${pos.line}:${pos.col}` : '';
      throw new ConfigError(`${file}${where}: invalid YAML: ${err.message.split('\n')[0]}`);
    }
    throw err;
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`${file}: the top level must be a mapping of keys`);
  }
  const { extends: parent, ...own } = raw as Record<string, unknown>;
  if (parent === undefined) return own;
  if (typeof parent !== 'string' || parent === '')
    throw new ConfigError(`${file}: key "extends" must be the path of another config`);
  return mergeConfig(readConfigTree(resolve(dirname(file), parent), [...chain, file]), own);
}

/** Deep merge of mappings; anything else (lists included) in `over` replaces what `base` has. */
export function mergeConfig(
  base: Record<string, unknown>,
  over: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  const isMap = (v: unknown): v is Record<string, unknown> =>
    v !== null && typeof v === 'object' && !Array.isArray(v);
  for (const [k, v] of Object.entries(over)) out[k] = isMap(v) && isMap(out[k]) ? mergeConfig(out[k], v) : v;
  return out;
}

/**
 * Reads a YAML config (following `extends: other.yaml`, relative to the file, as a base whose keys
 * it overrides), applies `key=value` overrides (later ones win), validates.
 */
export function loadConfig(file: string, overrides: readonly string[] = []): TrainConfig {
  const obj = readConfigTree(file);
  applyOverrides(obj, overrides);
  const source = overrides.length ? `${file} (with overrides ${overrides.join(' ')})` : file;
  return validateConfig(obj, source);
}

/** Stable hash of a validated config (keys sorted), for the process group's config check and checkpoints. */
export function configHash(cfg: TrainConfig): string {
  const canon = (v: unknown): unknown =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.keys(v as object)
            .sort()
            .map((k) => [k, canon((v as Record<string, unknown>)[k])]),
        )
      : Array.isArray(v)
        ? v.map(canon)
        : v;
  return createHash('sha256')
    .update(JSON.stringify(canon(cfg)))
    .digest('hex')
    .slice(0, 16);
}
