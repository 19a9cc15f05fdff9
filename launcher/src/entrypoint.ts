import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LaunchError } from './errors.js';

/** What every worker runs: node + exec args + the file + its arguments. */
export interface Entrypoint {
  /** `exec`: a program that is not node (a Python script or module, or `--no-python`'s executable). */
  kind: 'script' | 'config' | 'exec';
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

export function resolveEntrypoint(
  file: string,
  args: string[],
  cwd = process.cwd(),
  fromSource = RUNNING_FROM_SOURCE,
): Entrypoint {
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
    const program = builtinWorker(fromSource);
    if (!existsSync(program)) {
      throw new LaunchError(
        `the built-in worker ${program} is missing` + (fromSource ? '' : '; run `npm run build` first'),
      );
    }
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
