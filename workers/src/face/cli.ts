// What every `mtl-face` command shares: a failure prints one line naming the command and sets
// the exit code, instead of a stack trace; the `--backend` option lists every backend.
import { Option } from 'commander';
import { BACKEND_CHOICES } from '@mtlface/backend';

/** `--backend <name>`, its choices the backend package's own list (a bad name is refused by commander). */
export function backendOption(defaultName: string = 'auto'): Option {
  return new Option('--backend <name>', 'tfjs backend (auto: the best that loads here)')
    .choices(BACKEND_CHOICES)
    .default(defaultName);
}

/** Wraps a command's action so that any error becomes `mtl-face <name>: <message>` and exit code 1. */
export function reportErrors<A extends unknown[]>(
  name: string,
  action: (...args: A) => Promise<void>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await action(...args);
    } catch (e) {
      console.error(`mtl-face ${name}: ${(e as Error).message}`);
      process.exitCode = 1;
    }
  };
}
