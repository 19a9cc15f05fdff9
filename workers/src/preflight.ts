// What the launcher checks before it starts any worker of a config run: the schema, every input
// file, that the output directories can be written, and that the named backend is installed. A
// mistake here would otherwise fail inside every worker and be retried `--max-restarts` times;
// retries are for crashes. mtl-launch imports this file by path (next to the worker), so it loads
// only the config schema and the backend's install probe, never tfjs or the training code.
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { backendMissing } from '@mtlface/backend/installed';
import { ConfigError, type TrainConfig } from '@mtlface/train/release-flags';
import { checkpointSidecars } from '@mtlface/train/checkpoint-names';
import { parseWorkerArgs, type WorkerArgs } from './worker-args.js';

/** The command that creates a missing data directory or list. */
function dataHint(root: string): string {
  return /synth/.test(basename(root))
    ? `run \`npx mtl-data synth --out ${root}\``
    : `convert a set into it with \`npx mtl-data from-rec <dir-with-train.rec> --out ${root}\``;
}

/** Null when `dir` exists as a writable directory or can be created under a writable one. */
function notWritable(dir: string, shown: string, key: string): string | null {
  let d = dir;
  while (!existsSync(d)) {
    const up = dirname(d);
    if (up === d) break;
    d = up;
  }
  if (!statSync(d).isDirectory()) return `${key} ${shown}: ${d} is not a directory: choose another ${key}`;
  try {
    accessSync(d, constants.W_OK);
  } catch {
    return `${key} ${shown}: ${d} is not writable by this user: choose a writable ${key} (e.g. ${key}=runs/<name>)`;
  }
  return null;
}

/**
 * Null when a validated config can start here, else the one line that says what is wrong and the
 * command that fixes it. Relative paths are taken from `cwd`, as the workers will. `hostsCheckpoints`:
 * this node's checkpoint_dir is the run's (node 0), so the resume setting is checked against it.
 */
export function runnableProblem(
  cfg: TrainConfig,
  cwd: string,
  opts: { resume?: boolean; hostsCheckpoints?: boolean } = {},
): string | null {
  const at = (p: string): string => resolve(cwd, p);
  const root = cfg.data.root;
  if (!existsSync(at(root))) return `data.root ${root} does not exist: ${dataHint(root)}`;
  if (!statSync(at(root)).isDirectory()) return `data.root ${root} is not a directory`;
  const list = cfg.data.train_list;
  if (!existsSync(at(list))) return `data.train_list ${list} does not exist: ${dataHint(root)}`;
  if (cfg.val_interval > 0) {
    for (const p of cfg.val_pairs)
      if (!existsSync(at(p)))
        return (
          `val_pairs ${p} does not exist: ${/synth/.test(p) ? dataHint(dirname(p)) : `run \`npx mtl-data from-bin <set.bin> --out ${dirname(p)}\``}` +
          ' (or val_interval=0 to train without validation)'
        );
  }
  const inputs: Array<[string, string | null]> = [
    ['init_checkpoint', cfg.init_checkpoint],
    ['release.id_pretrained_path', cfg.release.id_pretrained_path],
    ['release.age_pretrained_path', cfg.release.age_pretrained_path],
  ];
  for (const [key, p] of inputs)
    if (p !== null && !existsSync(at(p)))
      return `${key} ${p} does not exist: fix the path or set ${key}=null`;
  const outputs: Array<[string, string | null]> = [
    ['checkpoint_dir', cfg.checkpoint_dir],
    ['losses_file', cfg.losses_file === null ? null : dirname(cfg.losses_file)],
    ['release.save_models', cfg.release.save_models],
  ];
  for (const [key, p] of outputs) {
    const problem = p === null ? null : notWritable(at(p), p, key);
    if (problem) return problem;
  }
  const missing = backendMissing(cfg.backend);
  if (missing) return `backend ${cfg.backend}: ${missing}`;
  if (opts.hostsCheckpoints) {
    const dir = at(cfg.checkpoint_dir);
    const held = checkpointSidecars(dir).length;
    const resume = opts.resume ? true : cfg.resume;
    if (resume === false && held > 0)
      return (
        `checkpoint_dir ${cfg.checkpoint_dir} already holds ${held} checkpoint(s) of an earlier run: ` +
        `add resume=true to continue it (resume=auto: continue if usable), or choose another checkpoint_dir=…`
      );
    if (resume === true && held === 0)
      return `resume=true but checkpoint_dir ${cfg.checkpoint_dir} holds no checkpoint: use resume=auto to start fresh when there is none`;
  }
  return null;
}

/**
 * For the launcher: null when the built-in worker's arguments (a YAML config with overrides, or the
 * release's flags) describe a run that can start, else the one line to print (several schema
 * problems are joined with '; ').
 */
export function checkWorkerArgs(
  argv: readonly string[],
  cwd: string,
  opts: { hostsCheckpoints?: boolean } = {},
): string | null {
  let args: WorkerArgs;
  try {
    args = parseWorkerArgs(argv);
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split('\n').join('; ');
    throw err;
  }
  if ('help' in args) return null;
  return runnableProblem(args.config, cwd, { resume: args.resume, ...opts });
}
