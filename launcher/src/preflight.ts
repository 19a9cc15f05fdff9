import { importBesideWorker, type Entrypoint } from './entrypoint.js';

interface PreflightModule {
  checkWorkerArgs(argv: readonly string[], cwd: string, opts: { hostsCheckpoints?: boolean }): string | null;
}

/**
 * Checks a run of the built-in worker (a config, or the release's flags) before any worker starts (schema, input files, writable outputs, backend),
 * with the built-in worker's own module, imported by path from beside it: the launcher does not
 * depend on the training packages, and that module loads only the config schema. Null when the
 * workers may start, else the one line that says what is wrong and how to fix it.
 */
export async function preflight(
  entry: Entrypoint,
  cwd: string,
  hostsCheckpoints: boolean,
): Promise<string | null> {
  if (entry.kind !== 'config' && entry.kind !== 'release') return null;
  const mod = await importBesideWorker<PreflightModule>(entry, 'preflight');
  return mod.checkWorkerArgs(entry.args, cwd, { hostsCheckpoints });
}
