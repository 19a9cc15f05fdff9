import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import type { Entrypoint } from './entrypoint.js';
import { LaunchError } from './errors.js';

/** How a non-node entry runs, as torchrun: `python -u script.py`, `python -u -m module`, or as is. */
export interface ExecEntryOptions {
  /** `-m`: the entry is a Python module. */
  module: boolean;
  /** `--no-python`: the entry is an executable, run directly. */
  noPython: boolean;
  /** The interpreter for a script or module (`MTL_PYTHON`, default `python3` on PATH). */
  python: string;
  env: NodeJS.ProcessEnv;
}

/** Where `name` is on PATH (or `name` itself when it has a slash); null when not found. */
export function findExecutable(name: string, env: NodeJS.ProcessEnv, cwd: string): string | null {
  const candidates = name.includes('/')
    ? [resolve(cwd, name)]
    : (env.PATH ?? '').split(delimiter).map((d) => join(d || '.', name));
  for (const c of candidates) {
    try {
      if (!statSync(c).isFile()) continue;
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // not here, or not executable
    }
  }
  return null;
}

/**
 * A worker command that is not a node program. Node still starts each worker (the exec shim in
 * the agent), so the orphan watchdog and the launcher's signals reach the program's process group.
 */
export function resolveExecEntrypoint(
  file: string,
  args: string[],
  cwd: string,
  o: ExecEntryOptions,
): Entrypoint {
  if (o.module && o.noPython)
    throw new LaunchError('-m and --no-python exclude each other (-m runs a Python module)');
  const need = (program: string, what: string): string => {
    const found = findExecutable(program, o.env, cwd);
    if (found === null)
      throw new LaunchError(
        `${what} ${program} not found${program.includes('/') ? '' : ' on PATH'}` +
          (what === 'interpreter' ? ' (set MTL_PYTHON to the Python to use)' : ' or not executable'),
      );
    return found;
  };
  let exec: string[];
  let path = file;
  if (o.noPython) {
    path = need(file, 'program');
    exec = [path, ...args];
  } else if (o.module) {
    exec = [need(o.python, 'interpreter'), '-u', '-m', file, ...args];
  } else {
    path = resolve(cwd, file);
    if (!existsSync(path)) throw new LaunchError(`script not found: ${file}`);
    exec = [need(o.python, 'interpreter'), '-u', path, ...args];
  }
  return { kind: 'exec', file: path, program: exec[0]!, execArgv: [], args: exec.slice(1), exec };
}
