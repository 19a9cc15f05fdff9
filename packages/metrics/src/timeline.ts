import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

// A Horovod-style timeline: each worker appends Chrome trace events to its own
// file (`FILE.rank<r>.jsonl`, one event per line, so a killed worker leaves a
// readable file), and the launcher merges them into FILE at the end.

/** Lanes (trace `tid`s) of one rank's track, top to bottom. */
export const TIMELINE_LANES = [
  'step',
  'data_wait',
  'compute',
  'grad_copy',
  'allreduce',
  'optimizer',
  'collective',
  'checkpoint',
  'validation',
] as const;
export type TimelineLane = (typeof TIMELINE_LANES)[number];

/** A Chrome trace event (the subset we write). `ts`/`dur` in microseconds. */
export interface TraceEvent {
  name: string;
  ph: 'X' | 'M' | 'i';
  ts: number;
  dur?: number;
  pid: number;
  tid: number;
  cat?: string;
  s?: 't' | 'p' | 'g';
  args?: Record<string, unknown>;
}

/** Wall-clock microseconds since the epoch, sub-millisecond resolution, comparable across processes. */
export function nowUs(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

export function rankTimelineFile(file: string, rank: number): string {
  return `${file}.rank${rank}.jsonl`;
}

export class TimelineRecorder {
  readonly path: string;
  private buffer: string[] = [];
  private readonly flushEvery: number;

  /**
   * `truncate`: start the rank file afresh (the first attempt of a run); restarted
   * workers append, so one timeline shows every attempt.
   */
  constructor(
    file: string,
    readonly rank: number,
    opts: { truncate?: boolean; flushEvery?: number; node?: number } = {},
  ) {
    this.path = rankTimelineFile(file, rank);
    this.flushEvery = opts.flushEvery ?? 256;
    mkdirSync(dirname(this.path), { recursive: true });
    if (opts.truncate) writeFileSync(this.path, '');
    // Track names are written by every (re)started worker; merge drops duplicates.
    this.push({
      name: 'process_name',
      ph: 'M',
      ts: 0,
      pid: rank,
      tid: 0,
      args: { name: opts.node === undefined ? `rank ${rank}` : `rank ${rank} (node ${opts.node})` },
    });
    this.push({ name: 'process_sort_index', ph: 'M', ts: 0, pid: rank, tid: 0, args: { sort_index: rank } });
    TIMELINE_LANES.forEach((lane, tid) => {
      this.push({ name: 'thread_name', ph: 'M', ts: 0, pid: rank, tid, args: { name: lane } });
      this.push({ name: 'thread_sort_index', ph: 'M', ts: 0, pid: rank, tid, args: { sort_index: tid } });
    });
    this.flush();
  }

  /** A span on `lane` that ended now and lasted `seconds` (or started at `startUs`). */
  span(
    lane: TimelineLane,
    name: string,
    seconds: number,
    args?: Record<string, unknown>,
    startUs?: number,
  ): void {
    const dur = Math.max(0, Math.round(seconds * 1e6));
    const ts = startUs ?? nowUs() - dur;
    const tid = TIMELINE_LANES.indexOf(lane);
    this.push({ name, cat: lane, ph: 'X', ts, dur, pid: this.rank, tid, ...(args ? { args } : {}) });
  }

  /** An instant marker (e.g. a skipped step). */
  instant(lane: TimelineLane, name: string, args?: Record<string, unknown>): void {
    const tid = TIMELINE_LANES.indexOf(lane);
    this.push({
      name,
      cat: lane,
      ph: 'i',
      s: 't',
      ts: nowUs(),
      pid: this.rank,
      tid,
      ...(args ? { args } : {}),
    });
  }

  private push(e: TraceEvent): void {
    this.buffer.push(JSON.stringify(e));
    if (this.buffer.length >= this.flushEvery) this.flush();
  }

  /** Appends buffered events synchronously (cheap: a few lines per step). */
  flush(): void {
    if (this.buffer.length === 0) return;
    appendFileSync(this.path, this.buffer.join('\n') + '\n');
    this.buffer = [];
  }
}

/**
 * Merges the per-rank timeline files the workers wrote (`FILE.rank<r>.jsonl`)
 * into one Chrome-trace JSON at FILE (viewable in Perfetto / chrome://tracing).
 * Timestamps are rebased to the earliest event; a torn last line (a killed
 * worker) is skipped. Resolves without writing when no rank file exists.
 */
export async function mergeTimeline(file: string): Promise<void> {
  const dir = dirname(file);
  const prefix = `${basename(file)}.rank`;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  const parts = names.filter((n) => n.startsWith(prefix) && /^\d+\.jsonl$/.test(n.slice(prefix.length)));
  if (parts.length === 0) return;
  const events: TraceEvent[] = [];
  const metadata = new Map<string, TraceEvent>();
  for (const name of parts) {
    const text = await readFile(join(dir, name), 'utf8');
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      let e: TraceEvent;
      try {
        e = JSON.parse(line) as TraceEvent;
      } catch {
        continue;
      }
      if (e.ph === 'M') metadata.set(`${e.pid}/${e.tid}/${e.name}`, e);
      else events.push(e);
    }
  }
  events.sort((a, b) => a.ts - b.ts);
  const originUs = events[0]?.ts ?? 0;
  for (const e of events) e.ts -= originUs;
  const trace = {
    traceEvents: [...metadata.values(), ...events],
    displayTimeUnit: 'ms',
    otherData: { epochOriginUs: originUs, ranks: parts.length },
  };
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, JSON.stringify(trace));
  await rename(tmp, file);
}
