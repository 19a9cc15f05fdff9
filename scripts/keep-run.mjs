// `npm run demo` trains into runs/demo; an earlier run there is moved aside, never deleted.
import { existsSync, renameSync } from 'node:fs';

/** Moves `dir` to `dir.1` (or the next free number) and returns where it went; null when absent. */
export function keepPreviousRun(dir) {
  if (!existsSync(dir)) return null;
  let n = 1;
  while (existsSync(`${dir}.${n}`)) n++;
  renameSync(dir, `${dir}.${n}`);
  return `${dir}.${n}`;
}
