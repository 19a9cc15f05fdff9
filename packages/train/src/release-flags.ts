// The MTLFace release's command line (`main.py --train_fr --backbone_name ir50 ...`) as a training
// config: one table of flags (the release's types, defaults and nargs, plus the few this project
// adds), a parser that follows argparse where a user could tell, and the mapping onto config keys.
// The launcher validates with it before spawning a worker and the worker builds its config with it,
// so it imports nothing heavier than the config schema.
import { applyOverrides, ConfigError, configSchema, type TrainConfig } from './config.js';

type FlagType = 'store_true' | 'int' | 'float' | 'str' | 'int*';
export type FlagValue = boolean | number | string | number[] | null;
export type FlagValues = Record<string, FlagValue>;

/** A raw, not yet validated config object. */
type RawConfig = Record<string, unknown>;

export interface ReleaseFlag {
  /** The long spelling, e.g. `--learning_rate`; values are stored under the name without dashes. */
  flag: string;
  aliases?: readonly string[];
  type: FlagType;
  default: FlagValue;
  /** True for the release's own flags, false for the ones this project adds. */
  release: boolean;
  /** The config keys it sets (for the docs and for naming the flag in validation errors). */
  keys: readonly string[];
  help: string;
}

const OUTPUT_ROOT = '../output';
const DATASET_ROOT = 'dataset';

/** Every flag. Order is the release's parser order, then ours. */
// prettier-ignore
export const RELEASE_FLAGS: readonly ReleaseFlag[] = [
  { flag: '--train_fr', type: 'store_true', default: false, release: true, keys: ['mode'], help: 'train face recognition (with --train_fas: joint)' },
  { flag: '--train_fas', type: 'store_true', default: false, release: true, keys: ['mode'], help: 'train face age synthesis' },
  { flag: '--backbone_name', type: 'str', default: null, release: true, keys: ['model.arch'], help: 'ir34, ir50, ir64, ir101 or irse101' },
  { flag: '--head_s', type: 'float', default: 64, release: true, keys: ['cosface.s'], help: 'CosFace scale' },
  { flag: '--head_m', type: 'float', default: 0.35, release: true, keys: ['cosface.m'], help: 'CosFace margin' },
  { flag: '--weight_decay', type: 'float', default: 5e-4, release: true, keys: ['fr_optim.weight_decay'], help: 'SGD weight decay' },
  { flag: '--momentum', type: 'float', default: 0.9, release: true, keys: ['fr_optim.momentum'], help: 'SGD momentum' },
  { flag: '--fr_age_loss_weight', type: 'float', default: 0, release: true, keys: ['loss.fr_age'], help: 'age estimation loss weight' },
  { flag: '--fr_da_loss_weight', type: 'float', default: 0, release: true, keys: ['loss.fr_da'], help: 'cross-age domain adversarial loss weight' },
  { flag: '--age_group', type: 'int', default: 7, release: true, keys: ['model.groups'], help: 'age groups' },
  { flag: '--gamma', type: 'float', default: 0.1, release: true, keys: ['fr_optim.gamma'], help: 'lr factor at each milestone' },
  { flag: '--milestone', type: 'int*', default: [20, 40, 60], release: true, keys: ['fr_optim.milestones'], help: 'iterations where lr drops (nargs *)' },
  { flag: '--warmup', type: 'int', default: 5, release: true, keys: ['fr_optim.warmup'], help: 'warm-up iterations' },
  { flag: '--learning_rate', type: 'float', default: 0.1, release: true, keys: ['fr_optim.lr'], help: 'FR learning rate' },
  { flag: '--dataset_name', aliases: ['-d'], type: 'str', default: null, release: true, keys: ['data.train_list'], help: 'reads <dataset_root>/NAME.txt' },
  { flag: '--image_size', type: 'int', default: 224, release: true, keys: ['model.input_size'], help: 'input side in pixels' },
  { flag: '--num_iter', type: 'int', default: 125, release: true, keys: ['iterations'], help: 'training iterations' },
  { flag: '--restore_iter', type: 'int', default: 0, release: true, keys: ['release.restore_iter'], help: 'continue from save_models/<module>-<iter>' },
  { flag: '--batch_size', type: 'int', default: 0, release: true, keys: ['data.batch_size'], help: 'images per worker' },
  { flag: '--val_interval', type: 'int', default: 1000, release: true, keys: ['val_interval'], help: 'validation interval (needs val_pairs=...)' },
  { flag: '--seed', type: 'int', default: 1, release: true, keys: ['seed'], help: 'random seed' },
  { flag: '--num_worker', type: 'int', default: 32, release: true, keys: ['data.loader_threads'], help: 'decode threads (only when given)' },
  { flag: '--local_rank', aliases: ['--local-rank'], type: 'int', default: 0, release: true, keys: [], help: 'accepted and ignored (the launcher sets LOCAL_RANK)' },
  { flag: '--amp', type: 'store_true', default: false, release: true, keys: ['amp'], help: 'mixed precision' },
  { flag: '--d_lr', type: 'float', default: 1e-4, release: true, keys: ['fas_optim.d_lr'], help: 'FAS discriminator learning rate' },
  { flag: '--g_lr', type: 'float', default: 1e-4, release: true, keys: ['fas_optim.g_lr'], help: 'FAS generator learning rate' },
  { flag: '--fas_gan_loss_weight', type: 'float', default: null, release: true, keys: ['loss.fas_gan'], help: 'GAN loss weight (unset: 75)' },
  { flag: '--fas_id_loss_weight', type: 'float', default: null, release: true, keys: ['loss.fas_id'], help: 'identity loss weight (unset: 0.002)' },
  { flag: '--fas_age_loss_weight', type: 'float', default: null, release: true, keys: ['loss.fas_age'], help: 'age loss weight (unset: 10)' },
  { flag: '--id_pretrained_path', type: 'str', default: null, release: true, keys: ['release.id_pretrained_path'], help: 'backbone state dict to start from' },
  { flag: '--age_pretrained_path', type: 'str', default: null, release: true, keys: ['release.age_pretrained_path'], help: 'age estimator state dict to start from' },
  { flag: '--no_flip', type: 'store_true', default: false, release: false, keys: ['data.flip'], help: 'no random horizontal flip' },
  { flag: '--dataset_root', type: 'str', default: DATASET_ROOT, release: false, keys: ['data.root'], help: 'directory of NAME.txt and the images' },
  { flag: '--output_root', type: 'str', default: OUTPUT_ROOT, release: false, keys: ['checkpoint_dir', 'release.save_models', 'losses_file'], help: 'save_models/, checkpoints/, losses.jsonl' },
  { flag: '--backend', type: 'str', default: 'auto', release: false, keys: ['backend'], help: 'tfjs backend' },
  { flag: '--wire', type: 'str', default: 'f16', release: false, keys: ['wire'], help: 'gradient wire format under --amp' },
  { flag: '--dropout', type: 'float', default: 0.5, release: false, keys: ['model.dropout'], help: 'dropout before the embedding' },
  { flag: '--save_interval', type: 'int', default: 1000, release: false, keys: ['checkpoint_interval'], help: 'checkpoint every N iterations' },
  { flag: '--release_constant_lr', type: 'store_true', default: false, release: false, keys: ['release.constant_lr'], help: 'lr = --learning_rate at every step, as the release as published' },
];

/** The stored name of a flag: its long spelling without the dashes (argparse's `dest`). */
export function flagDest(f: ReleaseFlag): string {
  return f.flag.slice(2);
}

const BY_SPELLING = new Map<string, ReleaseFlag>(
  RELEASE_FLAGS.flatMap((f) => [f.flag, ...(f.aliases ?? [])].map((s) => [s, f] as const)),
);

/** A bad flag or value. Named ConfigError still: the worker reports every config error as one line. */
export class ReleaseFlagError extends ConfigError {}

export interface ParsedReleaseArgs {
  /** Every flag's value (defaults included), by dest. */
  values: FlagValues;
  /** Dests of the flags given on the command line. */
  given: Set<string>;
  /** `key=value` config overrides, in order. */
  overrides: string[];
  help: boolean;
}

// argparse treats these as values, not options, when no option looks like a negative number.
const NEGATIVE_NUMBER = /^-\d+$|^-\d*\.\d+$/;

function isOptionLike(t: string): boolean {
  return t.startsWith('-') && t !== '-' && !NEGATIVE_NUMBER.test(t) && !t.includes(' ');
}

/** A token `--milestone` takes as one of its values (a `key=value` ends the list). */
function isListValue(t: string | undefined): t is string {
  return t !== undefined && t !== '--' && !isOptionLike(t) && !t.includes('=');
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/** The flag spelled most like `name` (dashes and underscores count alike). */
export function closestFlag(name: string): string {
  const norm = (s: string): string => s.replace(/^-+/, '').replaceAll('-', '_').toLowerCase();
  let best = RELEASE_FLAGS[0]!.flag;
  let bestD = Infinity;
  for (const f of RELEASE_FLAGS) {
    const d = editDistance(norm(name), norm(f.flag));
    if (d < bestD) [best, bestD] = [f.flag, d];
  }
  return best;
}

/** argparse's lookup: the exact spelling, else the one long flag it is a prefix of. */
function lookup(spelling: string): ReleaseFlag {
  const exact = BY_SPELLING.get(spelling);
  if (exact) return exact;
  if (spelling.startsWith('--') && spelling.length > 2) {
    const matches = [...BY_SPELLING.keys()].filter((s) => s.startsWith('--') && s.startsWith(spelling));
    const flags = [...new Set(matches.map((s) => BY_SPELLING.get(s)!))];
    if (flags.length === 1) return flags[0]!;
    if (flags.length > 1)
      throw new ReleaseFlagError(
        `ambiguous flag ${spelling}: could be ${flags.map((f) => f.flag).join(', ')}`,
      );
  }
  throw new ReleaseFlagError(`unknown flag ${spelling} (did you mean ${closestFlag(spelling)}?)`);
}

const PY_DIGITS = String.raw`\d+(?:_\d+)*`;
const PY_INT = new RegExp(`^[+-]?${PY_DIGITS}$`);
const PY_FLOAT = new RegExp(
  String.raw`^[+-]?(?:(?:${PY_DIGITS}(?:\.(?:${PY_DIGITS})?)?|\.${PY_DIGITS})(?:[eE][+-]?${PY_DIGITS})?|inf|infinity|nan)$`,
  'i',
);

/** Python's int() / float() of a command-line string (surrounding whitespace allowed, `_` between digits). */
function convert(f: ReleaseFlag, text: string): number | string {
  if (f.type === 'str') return text;
  const t = text.trim();
  const kind = f.type === 'float' ? 'float' : 'int';
  const ok = kind === 'float' ? PY_FLOAT.test(t) : PY_INT.test(t);
  if (!ok) throw new ReleaseFlagError(`${f.flag}: invalid ${kind} value '${text}'`);
  const plain = t.replaceAll('_', '').toLowerCase();
  if (/inf/.test(plain)) return plain.startsWith('-') ? -Infinity : Infinity;
  return Number(plain);
}

/**
 * Parses the release's flags as its argparse parser does (types, defaults, `nargs='*'`, store_true,
 * `--flag=value`, `-dNAME`, unique prefixes, last one wins), plus `key=value` config overrides
 * anywhere. Unlike argparse, `--milestone` stops at a `key=value` token so overrides may follow it.
 */
export function parseReleaseArgs(argv: readonly string[]): ParsedReleaseArgs {
  const values: FlagValues = Object.fromEntries(RELEASE_FLAGS.map((f) => [flagDest(f), f.default]));
  const given = new Set<string>();
  const overrides: string[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const t = argv[i]!;
    if (t === '--') {
      overrides.push(...argv.slice(i + 1).map((a) => checkOverride(a)));
      break;
    }
    if (!isOptionLike(t)) {
      overrides.push(checkOverride(t));
      continue;
    }
    if (t === '-h' || t === '--help') {
      help = true;
      continue;
    }
    let spelling = t;
    let explicit: string | undefined;
    if (t.startsWith('--')) {
      const eq = t.indexOf('=');
      if (eq > 0) [spelling, explicit] = [t.slice(0, eq), t.slice(eq + 1)];
    } else if (t.length > 2) {
      [spelling, explicit] = [t.slice(0, 2), t.slice(2).replace(/^=/, '')];
    }
    const f = lookup(spelling);
    const dest = flagDest(f);
    given.add(dest);
    if (f.type === 'store_true') {
      if (explicit !== undefined) throw new ReleaseFlagError(`${f.flag} takes no value (got '${explicit}')`);
      values[dest] = true;
    } else if (f.type === 'int*') {
      const items: string[] = [];
      if (explicit !== undefined) items.push(explicit);
      else while (isListValue(argv[i + 1])) items.push(argv[++i]!);
      values[dest] = items.map((x) => convert(f, x) as number);
    } else {
      let text = explicit;
      if (text === undefined) {
        const next = argv[i + 1];
        if (next === undefined || isOptionLike(next))
          throw new ReleaseFlagError(`${f.flag} expects one value`);
        text = next;
        i++;
      }
      values[dest] = convert(f, text);
    }
  }
  return { values, given, overrides, help };
}

function checkOverride(arg: string): string {
  if (arg.indexOf('=') <= 0)
    throw new ReleaseFlagError(
      `unexpected argument '${arg}': flags start with --, config overrides are key=value`,
    );
  return arg;
}

const FAS_WEIGHTS = {
  fas_gan_loss_weight: 'fas_gan',
  fas_id_loss_weight: 'fas_id',
  fas_age_loss_weight: 'fas_age',
};

/** The config object the flags describe, before overrides and validation. */
export function releaseRawConfig(p: ParsedReleaseArgs): RawConfig {
  const v = p.values;
  const num = (k: string): number => v[k] as number;
  const str = (k: string): string | null => v[k] as string | null;
  const mode = v.train_fr && v.train_fas ? 'joint' : v.train_fr ? 'aifr' : v.train_fas ? 'fas' : null;
  if (mode === null) throw new ReleaseFlagError('give --train_fr, --train_fas, or both (joint training)');
  const root = str('dataset_root')!;
  const out = str('output_root')!;
  const name = str('dataset_name');
  const loss: Record<string, number> = { fr_age: num('fr_age_loss_weight'), fr_da: num('fr_da_loss_weight') };
  // The release has no defaults for these (it fails without them); unset keeps the paper's values.
  for (const [flag, key] of Object.entries(FAS_WEIGHTS)) if (v[flag] !== null) loss[key] = num(flag);
  return {
    name: `mtlface-${mode}`,
    mode,
    seed: num('seed'),
    backend: str('backend'),
    iterations: num('num_iter'),
    model: {
      ...(v.backbone_name !== null ? { arch: str('backbone_name') } : {}),
      input_size: num('image_size'),
      groups: num('age_group'),
      dropout: num('dropout'),
    },
    data: {
      root,
      ...(name !== null ? { train_list: `${root.replace(/\/+$/, '')}/${name}.txt` } : {}),
      batch_size: num('batch_size'),
      flip: !v.no_flip,
      ...(p.given.has('num_worker') ? { loader_threads: num('num_worker') } : {}),
    },
    cosface: { s: num('head_s'), m: num('head_m') },
    fr_optim: {
      lr: num('learning_rate'),
      momentum: num('momentum'),
      weight_decay: num('weight_decay'),
      warmup: num('warmup'),
      milestones: v.milestone,
      gamma: num('gamma'),
    },
    fas_optim: { d_lr: num('d_lr'), g_lr: num('g_lr') },
    loss,
    amp: v.amp,
    wire: str('wire'),
    checkpoint_interval: num('save_interval'),
    checkpoint_dir: `${out}/checkpoints`,
    losses_file: `${out}/losses.jsonl`,
    val_interval: num('val_interval'),
    release: {
      save_models: `${out}/save_models`,
      restore_iter: num('restore_iter'),
      id_pretrained_path: str('id_pretrained_path'),
      age_pretrained_path: str('age_pretrained_path'),
      constant_lr: v.release_constant_lr,
    },
  };
}

/** The flag that sets a config key path (or a key inside it), for error messages. */
function flagFor(path: readonly (string | number)[]): ReleaseFlag | undefined {
  const key = path.join('.');
  return RELEASE_FLAGS.find((f) => f.keys.some((k) => key === k || key.startsWith(`${k}.`)));
}

/** argv after the entry word → a validated config; errors name the flag (or override) at fault. */
export function releaseConfig(argv: readonly string[]): TrainConfig {
  const parsed = parseReleaseArgs(argv);
  const raw = releaseRawConfig(parsed);
  applyOverrides(raw, parsed.overrides);
  // The release's validate() does nothing: validation runs only where pairs lists are named.
  if (!Array.isArray(raw.val_pairs) || raw.val_pairs.length === 0) raw.val_interval = 0;
  const r = configSchema.safeParse(raw);
  if (r.success) return r.data;
  const lines = r.error.issues.map((issue) => {
    const key = issue.path.join('.');
    const f = flagFor(issue.path);
    const who = f && !parsed.overrides.some((o) => o.startsWith(`${key}=`)) ? `${f.flag} (${key})` : key;
    if (issue.code === 'unrecognized_keys')
      return `unknown config key ${issue.keys.map((k) => (key ? `${key}.${k}` : k)).join(', ')}`;
    const value = issue.path.reduce<unknown>((o, k) => (o as Record<string | number, unknown>)?.[k], raw);
    return `${who}: ${value === undefined ? 'required' : issue.message}`;
  });
  throw new ReleaseFlagError(lines.join('\n'));
}

/** `mtlface --help`: the flags, their defaults and config keys. */
export function releaseHelp(): string {
  const rows = RELEASE_FLAGS.map((f) => {
    const spell = [f.flag, ...(f.aliases ?? [])].join(', ');
    const arg = f.type === 'store_true' ? '' : f.type === 'int*' ? ' N [N ...]' : ` ${f.type.toUpperCase()}`;
    const def =
      f.type === 'store_true' || f.default === null ? '' : ` (default ${JSON.stringify(f.default)})`;
    return `  ${(spell + arg).padEnd(34)} ${f.help}${def}`;
  });
  return [
    'usage: mtlface --train_fr | --train_fas [flags ...] [key=value ...]',
    '       mtlface <config.yaml> [key=value ...] [--resume]',
    '',
    "The MTLFace release's flags (launcher/README.md maps each onto its config key):",
    ...rows,
  ].join('\n');
}

// The built-in worker's argument parsing needs these without loading the training code.
export { ConfigError, loadConfig, type TrainConfig } from './config.js';
