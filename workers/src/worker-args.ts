// The built-in worker's arguments, in either of its two forms:
//   <config.yaml> [key=value ...] [--resume]
//   --train_fr | --train_fas [the release's flags ...] [key=value ...]
// mtl-launch imports this file (by path, next to the worker) to reject bad flags before it spawns
// anything, so it loads only the config schema, never the training code.
import {
  ConfigError,
  loadConfig,
  releaseConfig,
  releaseHelp,
  type TrainConfig,
} from '@mtlface/train/release-flags';

const CONFIG_FILE = /\.ya?ml$/;

export type WorkerArgs = { help: string } | { config: TrainConfig; resume: boolean };

/** argv → the config to train with; throws ConfigError with the message for the user. */
export function parseWorkerArgs(argv: readonly string[]): WorkerArgs {
  const [first, ...rest] = argv;
  if (first !== undefined && CONFIG_FILE.test(first)) {
    const unknown = rest.filter((a) => a.startsWith('-') && a !== '--resume');
    if (unknown.length > 0)
      throw new ConfigError(
        `unknown flag ${unknown.join(', ')} (usage: <config.yaml> [key=value ...] [--resume])`,
      );
    const overrides = rest.filter((a) => a !== '--resume');
    return { config: loadConfig(first, overrides), resume: rest.includes('--resume') };
  }
  if (argv.some((a) => a === '-h' || a === '--help')) return { help: releaseHelp() };
  return { config: releaseConfig(argv), resume: false };
}

/**
 * For the launcher: null when the release-flag arguments are good, else what to print and the exit
 * code (0 for --help). The YAML form is left to the worker, which reads the file.
 */
export function checkReleaseArgs(argv: readonly string[]): { code: number; text: string } | null {
  try {
    const r = parseWorkerArgs(argv);
    return 'help' in r ? { code: 0, text: r.help } : null;
  } catch (err) {
    if (err instanceof ConfigError) return { code: 2, text: `mtlface: ${err.message}` };
    throw err;
  }
}
