// How checkpoint files are named, with no dependency beyond node:fs, so that the launcher's
// preflight (which must not load tfjs) and the checkpoint code read a directory the same way.
import { existsSync, readdirSync } from 'node:fs';

/** `ckpt-<iteration:7>.json`: the sidecar that makes a checkpoint exist. */
export const CHECKPOINT_SIDECAR = /^ckpt-(\d+)\.json$/;

/** The file name base of checkpoint `iteration`: `ckpt-0000040`. */
export function checkpointBase(iteration: number): string {
  return `ckpt-${String(iteration).padStart(7, '0')}`;
}

/** The sidecar names in `dir` with their iterations (any order); none when `dir` does not exist. */
export function checkpointSidecars(dir: string): Array<{ name: string; iteration: number }> {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const m = CHECKPOINT_SIDECAR.exec(name);
    return m ? [{ name, iteration: Number(m[1]) }] : [];
  });
}
