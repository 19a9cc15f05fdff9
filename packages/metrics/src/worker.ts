import { Registry } from 'prom-client';
import type { Counter, Gauge, Histogram } from 'prom-client';
import { WORKER_DEFAULT_PREFIX, WORKER_METRICS } from './definitions.js';
import type { StepPhase } from './definitions.js';
import { METRICS_RESPONSE, isMetricsRequest } from './ipc.js';
import type { MetricsResponse } from './ipc.js';
import { collectLintedDefaults, registerAll } from './registry.js';
import { TimelineRecorder, nowUs } from './timeline.js';

export interface WorkerMetricsOptions {
  rank: number;
  localRank?: number;
  /** Collect the process/Node defaults (prefixed `mtl_worker_`). Default true. */
  defaultMetrics?: boolean;
  /** Timeline base file; default `process.env.MTL_TIMELINE` (the launcher's `--timeline`); null = none. */
  timeline?: string | null;
}

/** `fr` = face recognition, `fas` = face age synthesis; other strings are allowed for new tasks. */
export type Task = 'fr' | 'fas' | (string & {});

/** The training loop's handle on its worker's metrics (and timeline). */
export interface WorkerMetrics {
  readonly rank: number;
  readonly registry: Registry;
  readonly timeline: TimelineRecorder | null;
  loss(task: Task, name: string, value: number): void;
  learningRate(value: number, task?: Task): void;
  lossScale(value: number, task?: Task): void;
  skippedSteps(count?: number, task?: Task): void;
  /** Counts completed iterations; `current` (the schedule index) sets `mtl_iteration`. */
  iterations(count?: number, current?: number): void;
  images(count: number): void;
  /** One whole step that just ended, lasting `seconds`. Places its phases on the timeline and flushes it. */
  step(seconds: number, iteration?: number, args?: Record<string, unknown>): void;
  /**
   * One phase of the current step, lasting `seconds`: call it when the phase ends, or
   * with the step's per-phase totals just before `step()` (then the timeline lays the
   * phases out one after the other from the step's start).
   */
  stepPhase(phase: StepPhase, seconds: number): void;
  /** Starts timing a phase; call the returned function when it ends (returns seconds). */
  startPhase(phase: StepPhase): () => number;
  /** One all-reduce call that just ended: payload bytes and duration. */
  allReduce(bytes: number, seconds: number, detail?: Record<string, unknown>): void;
  validation(set: string, metric: string, value: number): void;
  /** One checkpoint written completely in `seconds`. */
  checkpoint(seconds: number): void;
  /**
   * Records one whole iteration from the trainer's report (see IterationSummary):
   * losses, learning rates, loss scales, skipped steps, counters, the step and
   * its phases; on the timeline the phases are laid out in order inside the step.
   */
  recordIteration(r: IterationSummary): void;
  /** Answers the launcher's metrics requests over IPC; returns a function that stops answering. */
  serveOverIpc(): () => void;
  /**
   * Flushes the timeline, sends the launcher a last snapshot (so counts since
   * the last scrape are not lost when the worker ends) and stops answering IPC.
   */
  close(): Promise<void>;
}

/**
 * One iteration as the trainer reports it (structurally @mtlface/train's
 * IterationReport) plus what only the loop knows: images, step and data-wait time.
 */
export interface IterationSummary {
  /** Schedule index of the iteration (sets `mtl_iteration`). */
  iteration: number;
  /** Images this rank trained on in the iteration. */
  images: number;
  /** Wall time of the whole iteration, data wait included. */
  stepSeconds: number;
  /** Time spent waiting for the batch (the loader's prefetch queue was empty). */
  dataWaitSeconds?: number;
  /** Keys `<task>_<name>` (fr_id, fr_age, fr_da, fas_d, fas_g …); a key without `_` is task `all`. */
  losses: Record<string, number>;
  lr?: Record<string, number | undefined>;
  scale?: Record<string, number>;
  /** Optimizer steps skipped this iteration, by key (fr, fas_d, fas_g → task before `_`). */
  skipped?: readonly string[];
  /** Totals over the iteration's phases, in milliseconds. */
  timings?: { computeMs: number; copyOutMs: number; exposedCommMs: number; optimizerMs: number };
}

interface PhaseSpan {
  phase: StepPhase;
  seconds: number;
  startUs: number;
}

/**
 * Timeline placement of a step's phases. Phases reported as they ended do not
 * overlap and keep their times; phases reported after the fact (totals at the end
 * of the step) would all end together, so they are laid out in the order given,
 * back to back from the step's start.
 */
export function layOutPhases(phases: readonly PhaseSpan[], stepStartUs: number): PhaseSpan[] {
  const toleranceUs = 50;
  const live = phases.every((p, i) => {
    const prev = phases[i - 1];
    return !prev || p.startUs >= prev.startUs + Math.round(prev.seconds * 1e6) - toleranceUs;
  });
  if (live) return [...phases];
  let at = stepStartUs;
  return phases.map((p) => {
    const out = { ...p, startUs: at };
    at += Math.round(p.seconds * 1e6);
    return out;
  });
}

/** `fr_id` → {task: fr, name: id}; `fas_g` → {task: fas, name: g}; `total` → {task: all, name: total}. */
export function splitLossKey(key: string): { task: string; name: string } {
  const i = key.indexOf('_');
  return i <= 0 ? { task: 'all', name: key } : { task: key.slice(0, i), name: key.slice(i + 1) };
}

/** The part of a process group that gradient sync uses. */
export interface AllReducer {
  allReduce(buf: Float32Array, opts?: { op?: string; wire?: string }): Promise<unknown>;
}

/**
 * Wraps a process group so every all-reduce is measured (f32 payload bytes,
 * seconds from issue to completion, overlapped or not) into `metrics`; other
 * members pass through to the group.
 */
export function instrumentAllReduce<G extends AllReducer>(group: G, metrics: WorkerMetrics): G {
  const allReduce = async (buf: Float32Array, opts?: { op?: string; wire?: string }) => {
    const t0 = performance.now();
    const out = await group.allReduce(buf, opts);
    metrics.allReduce(
      buf.byteLength,
      (performance.now() - t0) / 1000,
      opts?.wire ? { wire: opts.wire } : undefined,
    );
    return out;
  };
  return new Proxy(group, {
    get(target, prop) {
      if (prop === 'allReduce') return allReduce;
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

function finite(what: string, value: number): number {
  if (!Number.isFinite(value)) throw new RangeError(`metrics: ${what} must be a finite number, got ${value}`);
  return value;
}

function nonNegative(what: string, value: number): number {
  if (!(finite(what, value) >= 0)) throw new RangeError(`metrics: ${what} must be >= 0, got ${value}`);
  return value;
}

export function createWorkerMetrics(opts: WorkerMetricsOptions): WorkerMetrics {
  const { rank } = opts;
  if (!Number.isInteger(rank) || rank < 0)
    throw new RangeError(`metrics: rank must be an integer >= 0, got ${rank}`);
  const registry = new Registry();
  registry.setDefaultLabels({ rank: String(rank) });
  if (opts.defaultMetrics ?? true) collectLintedDefaults(registry, WORKER_DEFAULT_PREFIX);
  const m = registerAll(registry, WORKER_METRICS);
  const gauge = (g: unknown) => g as Gauge;
  const counter = (c: unknown) => c as Counter;
  const histogram = (h: unknown) => h as Histogram;

  const timelineFile = opts.timeline === undefined ? process.env.MTL_TIMELINE || null : opts.timeline;
  // The launcher's first attempt starts each rank file afresh; restarts append to it.
  const firstAttempt = (process.env.MTL_RESTART_COUNT ?? '0') === '0';
  const node = process.env.GROUP_RANK === undefined ? undefined : Number(process.env.GROUP_RANK);
  const timeline = timelineFile
    ? new TimelineRecorder(timelineFile, rank, { truncate: firstAttempt, node })
    : null;
  let stopIpc: (() => void) | null = null;
  let served = false;
  let pendingPhases: PhaseSpan[] = [];

  const self: WorkerMetrics = {
    rank,
    registry,
    timeline,
    loss(task, name, value) {
      // A NaN loss is information (divergence), not a caller bug: export it as is.
      gauge(m.loss).set({ task, name }, value);
    },
    learningRate(value, task = 'fr') {
      gauge(m.learningRate).set({ task }, finite('learning rate', value));
    },
    lossScale(value, task = 'fr') {
      gauge(m.lossScale).set({ task }, finite('loss scale', value));
      // A task with a loss scale can skip steps: its counter exists from 0, so rate() sees the first skip.
      counter(m.skippedSteps).inc({ task }, 0);
    },
    skippedSteps(count = 1, task = 'fr') {
      counter(m.skippedSteps).inc({ task }, nonNegative('skipped steps', count));
      timeline?.instant('step', `skipped ${task} step (overflow)`, { count });
    },
    iterations(count = 1, current) {
      counter(m.iterations).inc(nonNegative('iterations', count));
      if (current !== undefined) gauge(m.iteration).set(nonNegative('iteration', current));
    },
    images(count) {
      counter(m.images).inc(nonNegative('images', count));
    },
    step(seconds, iteration, args) {
      histogram(m.step).observe(nonNegative('step seconds', seconds));
      if (!timeline) return;
      const endUs = nowUs();
      const startUs = endUs - Math.round(seconds * 1e6);
      timeline.span('step', iteration === undefined ? 'step' : `step ${iteration}`, seconds, args, startUs);
      for (const p of layOutPhases(pendingPhases, startUs))
        timeline.span(p.phase, p.phase, p.seconds, undefined, p.startUs);
      pendingPhases = [];
      timeline.flush();
    },
    stepPhase(phase, seconds) {
      histogram(m.stepPhase).observe({ phase }, nonNegative(`${phase} seconds`, seconds));
      if (!timeline) return;
      // Placed on the timeline when the step ends (see layOutPhases).
      pendingPhases.push({ phase, seconds, startUs: nowUs() - Math.round(seconds * 1e6) });
      if (pendingPhases.length > 64) {
        for (const p of pendingPhases.splice(0))
          timeline.span(p.phase, p.phase, p.seconds, undefined, p.startUs);
      }
    },
    startPhase(phase) {
      const t0 = performance.now();
      return () => {
        const seconds = (performance.now() - t0) / 1000;
        self.stepPhase(phase, seconds);
        return seconds;
      };
    },
    allReduce(bytes, seconds, detail) {
      histogram(m.allReduceBytes).observe(nonNegative('all-reduce bytes', bytes));
      histogram(m.allReduceSeconds).observe(nonNegative('all-reduce seconds', seconds));
      timeline?.span('collective', 'allreduce', seconds, { bytes, ...detail });
    },
    validation(set, metric, value) {
      gauge(m.validation).set({ set, metric }, finite(`validation ${set}/${metric}`, value));
    },
    checkpoint(seconds) {
      counter(m.checkpointWrites).inc();
      histogram(m.checkpointSeconds).observe(nonNegative('checkpoint seconds', seconds));
      timeline?.span('checkpoint', 'checkpoint', seconds);
      timeline?.flush();
    },
    recordIteration(r) {
      for (const [key, value] of Object.entries(r.losses)) {
        const { task, name } = splitLossKey(key);
        self.loss(task, name, value);
      }
      for (const [task, lr] of Object.entries(r.lr ?? {})) if (lr !== undefined) self.learningRate(lr, task);
      for (const [task, scale] of Object.entries(r.scale ?? {})) self.lossScale(scale, task);
      for (const key of r.skipped ?? []) self.skippedSteps(1, splitLossKey(key).task);
      self.images(r.images);
      self.iterations(1, r.iteration);
      if (r.dataWaitSeconds !== undefined) self.stepPhase('data_wait', r.dataWaitSeconds);
      const t = r.timings;
      if (t) {
        self.stepPhase('compute', t.computeMs / 1000);
        self.stepPhase('grad_copy', t.copyOutMs / 1000);
        self.stepPhase('allreduce', t.exposedCommMs / 1000);
        self.stepPhase('optimizer', t.optimizerMs / 1000);
      }
      self.step(r.stepSeconds, r.iteration, { images: r.images });
    },
    serveOverIpc() {
      served = true;
      stopIpc ??= serveRegistryOverIpc(registry, rank);
      return () => {
        stopIpc?.();
        stopIpc = null;
      };
    },
    async close() {
      if (timeline) {
        for (const p of pendingPhases.splice(0))
          timeline.span(p.phase, p.phase, p.seconds, undefined, p.startUs);
        timeline.flush();
      }
      stopIpc?.();
      stopIpc = null;
      if (served) await pushSnapshot(registry, rank);
    },
  };
  return self;
}

/** Sends an unsolicited snapshot (request id 0) and resolves once it is handed to the channel. */
async function pushSnapshot(registry: Registry, rank: number): Promise<void> {
  if (!process.send || !process.connected) return;
  const metrics = await registry.getMetricsAsJSON();
  const msg: MetricsResponse = { type: METRICS_RESPONSE, id: 0, rank, metrics };
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 1000).unref(); // a dead launcher must not hold us
    process.send?.(msg, undefined, {}, () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Answers the launcher's `mtl:metrics:req` messages with `registry.getMetricsAsJSON()`.
 * A no-op outside a launcher (no IPC channel). The channel is unref'd so that
 * listening does not keep a finished worker alive.
 */
export function serveRegistryOverIpc(registry: Registry, rank: number): () => void {
  const send = process.send?.bind(process);
  if (!send) return () => {};
  const reply = (msg: MetricsResponse) => {
    if (process.connected) send(msg, undefined, {}, () => {});
  };
  const onMessage = (msg: unknown) => {
    if (!isMetricsRequest(msg)) return;
    registry.getMetricsAsJSON().then(
      (metrics) => reply({ type: METRICS_RESPONSE, id: msg.id, rank, metrics }),
      (err: unknown) => reply({ type: METRICS_RESPONSE, id: msg.id, rank, error: String(err) }),
    );
  };
  process.on('message', onMessage);
  process.channel?.unref();
  return () => {
    process.off('message', onMessage);
  };
}
