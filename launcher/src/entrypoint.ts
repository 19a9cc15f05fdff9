import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { LaunchError } from './errors.js';

/** What every worker runs: node + exec args + the file + its arguments. */
export interface Entrypoint {
  /**
   * `release`: the built-in worker with the MTLFace release's flags (`mtlface --train_fr ...`);
   * `exec`: a program that is not node (a Python script or module, or `--no-python`'s executable).
   */
  kind: 'script' | 'config' | 'release' | 'exec';
  /** The user's file: the script, or the config passed to the built-in worker. */
  file: string;
  /** The program node runs in each worker. */
  program: string;
  /** Node flags put before the watchdog import and the program. */
  execArgv: string[];
  args: string[];
  /** `exec` only: the command each worker runs (looked up on PATH when it has no slash). */
  exec?: string[];
}

const SCRIPT_EXT = /\.(js|mjs|cjs|ts|mts|cts)$/;
const TS_EXT = /\.(ts|mts|cts)$/;
const CONFIG_EXT = /\.(ya?ml)$/;
/** The entry word that names the built-in trainer, as `main.py` in the release's launch line. */
export const BUILTIN_ENTRY = 'mtlface';

/** True when this module runs from its TypeScript source (tests, `npm run` from source). */
export const RUNNING_FROM_SOURCE = import.meta.url.endsWith('.ts');

/** tsx's loader as an absolute URL, so a worker finds it whatever its working directory. */
export function tsxLoaderUrl(): string {
  return import.meta.resolve('tsx');
}

/** Flags that run this repository from source: the `mtl-source` export condition, and tsx for .ts. */
export function sourceExecArgv(): string[] {
  return ['--conditions=mtl-source', '--import', tsxLoaderUrl()];
}

export function builtinWorker(fromSource = RUNNING_FROM_SOURCE): string {
  const rel = fromSource ? '../../workers/src/worker.ts' : '../../workers/dist/worker.js';
  return fileURLToPath(new URL(rel, import.meta.url));
}

function builtinProgram(fromSource: boolean): string {
  const program = builtinWorker(fromSource);
  if (!existsSync(program)) {
    throw new LaunchError(
      `the built-in worker ${program} is missing` + (fromSource ? '' : '; run `npm run build` first'),
    );
  }
  return program;
}

export function resolveEntrypoint(
  file: string,
  args: string[],
  cwd = process.cwd(),
  fromSource = RUNNING_FROM_SOURCE,
): Entrypoint {
  if (file === BUILTIN_ENTRY) {
    // `mtlface configs/x.yaml ...` is the bare config form; anything else is the release's flags.
    if (args[0] !== undefined && CONFIG_EXT.test(args[0]))
      return resolveEntrypoint(args[0], args.slice(1), cwd, fromSource);
    const program = builtinProgram(fromSource);
    const execArgv = fromSource ? sourceExecArgv() : [];
    return { kind: 'release', file: BUILTIN_ENTRY, program, execArgv, args };
  }
  const path = resolve(cwd, file);
  const isConfig = CONFIG_EXT.test(file);
  if (!isConfig && !SCRIPT_EXT.test(file)) {
    throw new LaunchError(
      `${file}: expected a training config (.yaml, .yml) or a script (.js, .mjs, .cjs, .ts)`,
    );
  }
  if (!existsSync(path)) throw new LaunchError(`${isConfig ? 'config' : 'script'} not found: ${file}`);
  if (!statSync(path).isFile()) throw new LaunchError(`not a file: ${file}`);
  if (isConfig) {
    const program = builtinProgram(fromSource);
    return {
      kind: 'config',
      file: path,
      program,
      execArgv: fromSource ? sourceExecArgv() : [],
      args: [path, ...args],
    };
  }
  // tsx only where needed (it costs ~0.5 s of startup per worker): for a .ts script.
  const conditions = fromSource ? ['--conditions=mtl-source'] : [];
  const execArgv = [...conditions, ...(TS_EXT.test(file) ? ['--import', tsxLoaderUrl()] : [])];
  return { kind: 'script', file: path, program: path, execArgv, args };
}

interface WorkerArgsModule {
  checkReleaseArgs(argv: readonly string[]): { code: number; text: string } | null;
}

/**
 * Checks the release's flags before any worker starts, with the worker's own parser: the module
 * beside the built-in worker, imported by path (the launcher does not depend on the training
 * packages; that module loads only the config schema). Null when the workers may start; otherwise
 * the text to print and the exit code (0 for --help).
 */
export async function checkEntrypointArgs(entry: Entrypoint): Promise<{ code: number; text: string } | null> {
  if (entry.kind !== 'release') return null;
  const mod = await importBesideWorker<WorkerArgsModule>(entry, 'worker-args');
  return mod.checkReleaseArgs(entry.args);
}

/**
 * A module of the built-in worker (`worker-args`, `preflight`), imported by path from beside the
 * worker the entrypoint runs (source or build alike). The launcher has no package arrow to the
 * training code; these modules load only the config schema and the filesystem checks.
 */
export async function importBesideWorker<M>(entry: Entrypoint, name: string): Promise<M> {
  const file = entry.program.replace(/worker\.(ts|js)$/, `${name}.$1`);
  return (await import(pathToFileURL(file).href)) as M;
}
