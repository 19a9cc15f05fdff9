import { Registry } from 'prom-client';
import type { Counter, Gauge, Histogram } from 'prom-client';
import { WORKER_DEFAULT_PREFIX, WORKER_METRICS } from './definitions.js';
import type { StepPhase } from './definitions.js';
import { METRICS_RESPONSE, isMetricsRequest } from './ipc.js';
import type { MetricsResponse } from './ipc.js';
import { collectLintedDefaults, registerAll } from './registry.js';
import { TimelineRecorder } from './timeline.js';

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
  lossScale(value: number): void;
  skippedSteps(count?: number): void;
  /** Counts completed iterations; `current` (the schedule index) sets `mtl_iteration`. */
  iterations(count?: number, current?: number): void;
  images(count: number): void;
  /** One whole step that just ended, lasting `seconds`. Flushes the timeline. */
  step(seconds: number, iteration?: number): void;
  /** One phase of the current step that just ended, lasting `seconds`. */
  stepPhase(phase: StepPhase, seconds: number): void;
  /** Starts timing a phase; call the returned function when it ends (returns seconds). */
  startPhase(phase: StepPhase): () => number;
  /** One all-reduce call that just ended: payload bytes and duration. */
  allReduce(bytes: number, seconds: number, detail?: Record<string, unknown>): void;
  validation(set: string, metric: string, value: number): void;
  /** One checkpoint written completely in `seconds`. */
  checkpoint(seconds: number): void;
  /** Answers the launcher's metrics requests over IPC; returns a function that stops answering. */
  serveOverIpc(): () => void;
  /**
   * Flushes the timeline, sends the launcher a last snapshot (so counts since
   * the last scrape are not lost when the worker ends) and stops answering IPC.
   */
  close(): Promise<void>;
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
  const timeline = timelineFile ? new TimelineRecorder(timelineFile, rank, { truncate: firstAttempt }) : null;
  let stopIpc: (() => void) | null = null;

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
    lossScale(value) {
      gauge(m.lossScale).set(finite('loss scale', value));
    },
    skippedSteps(count = 1) {
      counter(m.skippedSteps).inc(nonNegative('skipped steps', count));
      timeline?.instant('step', 'skipped step (overflow)', { count });
    },
    iterations(count = 1, current) {
      counter(m.iterations).inc(nonNegative('iterations', count));
      if (current !== undefined) gauge(m.iteration).set(nonNegative('iteration', current));
    },
    images(count) {
      counter(m.images).inc(nonNegative('images', count));
    },
    step(seconds, iteration) {
      histogram(m.step).observe(nonNegative('step seconds', seconds));
      if (timeline) {
        timeline.span('step', iteration === undefined ? 'step' : `step ${iteration}`, seconds);
        timeline.flush();
      }
    },
    stepPhase(phase, seconds) {
      histogram(m.stepPhase).observe({ phase }, nonNegative(`${phase} seconds`, seconds));
      timeline?.span(phase, phase, seconds);
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
    serveOverIpc() {
      stopIpc ??= serveRegistryOverIpc(registry, rank);
      return () => {
        stopIpc?.();
        stopIpc = null;
      };
    },
    async close() {
      timeline?.flush();
      if (!stopIpc) return;
      stopIpc();
      stopIpc = null;
      await pushSnapshot(registry, rank);
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
