import { LaunchError } from './errors.js';

/** torchrun's stream selectors: 0 none, 1 stdout, 2 stderr, 3 both. */
export type StreamSet = { out: boolean; err: boolean };
/** A selector for every local rank: one value for all, or `local_rank:value` pairs. */
export type StreamSpec = (localRank: number) => StreamSet;

const NONE: StreamSet = { out: false, err: false };

function streamSet(v: string, flag: string): StreamSet {
  switch (v.trim()) {
    case '0':
      return NONE;
    case '1':
      return { out: true, err: false };
    case '2':
      return { out: false, err: true };
    case '3':
      return { out: true, err: true };
    default:
      throw new LaunchError(`${flag}: expected 0 (none), 1 (stdout), 2 (stderr) or 3 (both), got '${v}'`);
  }
}

/** Parses `--redirects` / `--tee`: `3`, or `0:1,1:2` (local rank → selector, others none). */
export function parseStreamSpec(value: string | undefined, flag: string): StreamSpec {
  if (value === undefined) return () => NONE;
  if (!value.includes(':')) {
    const all = streamSet(value, flag);
    return () => all;
  }
  const map = new Map<number, StreamSet>();
  for (const part of value.split(',')) {
    const [rank, v] = part.split(':');
    if (rank === undefined || v === undefined || !/^\d+$/.test(rank.trim())) {
      throw new LaunchError(`${flag}: expected local_rank:value pairs like 0:1,1:3, got '${value}'`);
    }
    map.set(Number(rank), streamSet(v, flag));
  }
  return (localRank) => map.get(localRank) ?? NONE;
}

/** `--local-ranks-filter 0,2`: the local ranks whose output reaches the console (files get all). */
export function parseRanksFilter(value: string | undefined): Set<number> | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const ranks = value.split(',').map((s) => s.trim());
  if (!ranks.every((r) => /^\d+$/.test(r))) {
    throw new LaunchError(
      `--local-ranks-filter: expected comma-separated local ranks like 0,1, got '${value}'`,
    );
  }
  return new Set(ranks.map(Number));
}
