export { LauncherMetrics } from './launcher.js';
export type { LauncherMetricsOptions, WorkerExitCause } from './launcher.js';
export {
  createWorkerMetrics,
  serveRegistryOverIpc,
  instrumentAllReduce,
  splitLossKey,
  layOutPhases,
} from './worker.js';
export type { WorkerMetrics, WorkerMetricsOptions, Task, IterationSummary, AllReducer } from './worker.js';
export { mergeTimeline, TimelineRecorder, rankTimelineFile, TIMELINE_LANES } from './timeline.js';
export type { TimelineLane, TraceEvent } from './timeline.js';
export {
  WORKER_METRICS,
  LAUNCHER_METRICS,
  STEP_PHASES,
  NODE_SUMMED,
  WORKER_DEFAULT_PREFIX,
  sampleNames,
} from './definitions.js';
export type { MetricDefinition, MetricType, Aggregation, StepPhase } from './definitions.js';
export { exportedSampleNames } from './catalog.js';
