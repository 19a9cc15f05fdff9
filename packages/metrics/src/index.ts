export { LauncherMetrics } from './launcher.js';
export type { LauncherMetricsOptions, WorkerExitCause } from './launcher.js';
export { mergeTimeline } from './timeline.js';
