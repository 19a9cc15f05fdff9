// Where a run starts: fresh, or from the newest usable checkpoint of its directory. A resume must
// continue the same trajectory, so the checkpoint's config is compared with the current one, and
// a change to anything that alters the trajectory is refused unless the user names it.
import {
  CheckpointError,
  listCheckpoints,
  newRunIdentity,
  scanCheckpoints,
  type FoundCheckpoint,
  type RunIdentity,
} from './checkpoint.js';
import { configSchema, type TrainConfig } from './config.js';

/**
 * Config keys that do not change what a resumed run computes: how long it runs, where it writes,
 * how often it logs, validates or saves, and how it loads data. A change to any other key (or to
 * the world size, `world_size`) is refused unless listed in `resume_override`.
 */
export const RESUME_FREE_KEYS: readonly string[] = [
  'name',
  'iterations',
  'stop_at',
  'resume',
  'resume_override',
  'backend',
  'checkpoint_interval',
  'checkpoint_dir',
  'keep_checkpoints',
  'init_checkpoint',
  'log_interval',
  'val_interval',
  'val_pairs',
  'val_batch_size',
  'losses_file',
  'data.loader_threads',
  'data.prefetch',
  'release.save_models',
  'release.restore_iter',
  'release.id_pretrained_path',
  'release.age_pretrained_path',
];

function flatten(v: unknown, prefix: string, out: Map<string, string>): Map<string, string> {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v as Record<string, unknown>))
      flatten(x, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out.set(prefix, JSON.stringify(v));
  }
  return out;
}

function covered(key: string, list: readonly string[]): boolean {
  return list.some((k) => key === k || key.startsWith(`${k}.`));
}

/** The dotted keys whose values differ between two configs (and `world_size`), sorted. */
export function configChanges(
  saved: unknown,
  current: TrainConfig,
  savedWorldSize: number,
  worldSize: number,
): string[] {
  // A checkpoint written before a key existed holds that key's default.
  const parsed = configSchema.safeParse(saved);
  const a = flatten(parsed.success ? parsed.data : saved, '', new Map());
  const b = flatten(current, '', new Map());
  const keys = new Set([...a.keys(), ...b.keys()]);
  const changed = [...keys].filter((k) => a.get(k) !== b.get(k));
  if (savedWorldSize !== worldSize) changed.push('world_size');
  return changed.sort();
}

export interface ResumePlan {
  /** The checkpoint to load; null for a fresh start. */
  found: FoundCheckpoint | null;
  /** This run's identity: a resume keeps the checkpoint's id (its lineage), a fresh start makes one. */
  run: RunIdentity;
  /** Lines for the log (adopted keys, skipped files). */
  notes: string[];
}

export interface ResumeRequest {
  dir: string;
  /** The config's `resume`, or true when the caller asks (`--resume`). */
  resume: boolean | 'auto';
  /** A launcher restart: continue the run if it saved anything, else start it again. */
  restart: boolean;
  config: TrainConfig;
  worldSize: number;
}

/**
 * Decides where a run starts (rank 0). Throws a CheckpointError, one line naming the files, when
 * the directory holds another run's checkpoints and no resume was asked, when `resume=true` finds
 * nothing usable, or when the checkpoint's config differs where it matters.
 */
export function planResume(req: ResumeRequest): ResumePlan {
  const { dir, config } = req;
  const existing = listCheckpoints(dir);
  if (req.resume === false && !req.restart) {
    if (existing.length > 0) {
      const names = existing.slice(0, 3).map((c) => c.path.slice(c.path.lastIndexOf('/') + 1));
      throw new CheckpointError(
        `checkpoint_dir ${dir} already holds checkpoints (${names.join(', ')}${existing.length > 3 ? ', …' : ''}) ` +
          `of an earlier run: set resume=true to continue it (resume=auto: continue if usable, else start), ` +
          `or choose an empty checkpoint_dir`,
      );
    }
    return { found: null, run: newRunIdentity(), notes: [] };
  }
  const { found, rejected } = scanCheckpoints(dir);
  const notes = rejected.map((r) => `checkpoint ${r.path} is not usable: ${r.problem}; skipped`);
  if (!found) {
    if (req.resume === true && !req.restart) {
      const why =
        rejected.length > 0
          ? rejected.map((r) => `${r.path}: ${r.problem}`).join('; ')
          : `no checkpoint (ckpt-*.json) in ${dir}`;
      throw new CheckpointError(
        `resume=true but nothing usable to resume: ${why} (resume=auto starts fresh instead)`,
      );
    }
    notes.push(`no usable checkpoint in ${dir}: starting from scratch`);
    return { found: null, run: newRunIdentity(), notes };
  }
  const s = found.sidecar;
  const changed = configChanges(s.config, config, s.worldSize, req.worldSize).filter(
    (k) => !covered(k, RESUME_FREE_KEYS),
  );
  const refused = changed.filter((k) => !covered(k, config.resume_override));
  if (refused.length > 0) {
    const show = refused
      .slice(0, 6)
      .map((k) => describeChange(k, s.config, config, s.worldSize, req.worldSize));
    throw new CheckpointError(
      `cannot resume ${found.sidecarPath}: the config changed ${show.join(', ')}${refused.length > 6 ? ', …' : ''}; ` +
        `these change the training trajectory (allow them with resume_override=[${refused.join(',')}])`,
    );
  }
  if (changed.length > 0) {
    const list = changed.map((k) => describeChange(k, s.config, config, s.worldSize, req.worldSize));
    notes.push(`resuming with changed keys (resume_override): ${list.join(', ')}`);
  }
  const run = s.run ? { id: s.run.id, attempt: s.run.attempt + 1 } : newRunIdentity();
  return { found, run, notes };
}

function valueAt(obj: unknown, key: string): unknown {
  let v: unknown = obj;
  for (const part of key.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

function describeChange(key: string, saved: unknown, current: TrainConfig, ws0: number, ws1: number): string {
  if (key === 'world_size') return `world_size ${ws0} → ${ws1}`;
  return `${key} ${JSON.stringify(valueAt(saved, key))} → ${JSON.stringify(valueAt(current, key))}`;
}
