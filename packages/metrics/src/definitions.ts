// The metric set, as one table: the worker registry, the launcher's aggregation
// and the dashboard test all read it, so a name lives in exactly one place.

export type MetricType = 'counter' | 'gauge' | 'histogram';

/**
 * How the launcher folds its workers' series into the node's endpoint:
 * `rank` keeps one series per rank (stragglers, per-rank losses);
 * `node` sums over the node's ranks and drops the `rank` label.
 */
export type Aggregation = 'rank' | 'node';

export interface MetricDefinition {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  readonly labelNames: readonly string[];
  readonly buckets?: readonly number[];
  readonly aggregation: Aggregation;
}

/** Phases of one training step, as `phase` label values (and timeline lanes). */
export const STEP_PHASES = ['data_wait', 'compute', 'grad_copy', 'allreduce', 'optimizer'] as const;
export type StepPhase = (typeof STEP_PHASES)[number];

const PHASE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const STEP_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
/** 1 KiB … 1 GiB in powers of 4: gradient buckets are ~25 MB, small tensors a few KiB. */
const BYTE_BUCKETS = Array.from({ length: 11 }, (_, i) => 1024 * 4 ** i);
const CHECKPOINT_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

function def(
  name: string,
  type: MetricType,
  help: string,
  labelNames: readonly string[] = [],
  extra: { buckets?: readonly number[]; aggregation?: Aggregation } = {},
): MetricDefinition {
  return { name, type, help, labelNames, aggregation: extra.aggregation ?? 'rank', buckets: extra.buckets };
}

/** Series every worker exports; each carries a `rank` label (a registry default label). */
export const WORKER_METRICS = {
  loss: def('mtl_loss', 'gauge', 'Last value of a training loss, by task (fr, fas) and loss name.', [
    'task',
    'name',
  ]),
  learningRate: def('mtl_learning_rate', 'gauge', 'Current learning rate of the optimizer of a task.', [
    'task',
  ]),
  lossScale: def(
    'mtl_loss_scale',
    'gauge',
    'Current dynamic loss scale of a task (1 without mixed precision).',
    ['task'],
  ),
  skippedSteps: def(
    'mtl_skipped_steps_total',
    'counter',
    'Optimizer steps of a task skipped because a gradient overflowed (inf/NaN) on some rank.',
    ['task'],
  ),
  iterations: def('mtl_iterations_total', 'counter', 'Training iterations completed by this process.'),
  iteration: def(
    'mtl_iteration',
    'gauge',
    'Index of the last completed iteration of the schedule (survives resumes).',
  ),
  images: def('mtl_images_total', 'counter', 'Training images processed, summed over the node.', [], {
    aggregation: 'node',
  }),
  step: def('mtl_step_seconds', 'histogram', 'Wall time of one training step.', [], {
    buckets: STEP_BUCKETS,
  }),
  stepPhase: def(
    'mtl_step_phase_seconds',
    'histogram',
    'Wall time of one phase of a training step (data_wait, compute, grad_copy, allreduce = exposed all-reduce, optimizer).',
    ['phase'],
    { buckets: PHASE_BUCKETS },
  ),
  allReduceSeconds: def('mtl_allreduce_seconds', 'histogram', 'Duration of one all-reduce call.', [], {
    buckets: PHASE_BUCKETS,
  }),
  allReduceBytes: def('mtl_allreduce_bytes', 'histogram', 'Payload size of one all-reduce call.', [], {
    buckets: BYTE_BUCKETS,
  }),
  validation: def(
    'mtl_validation_score',
    'gauge',
    'Last validation result (a ratio, e.g. accuracy), by set and metric.',
    ['set', 'metric'],
  ),
  checkpointWrites: def('mtl_checkpoint_writes_total', 'counter', 'Checkpoints written completely.'),
  checkpointSeconds: def('mtl_checkpoint_seconds', 'histogram', 'Duration of one checkpoint write.', [], {
    buckets: CHECKPOINT_BUCKETS,
  }),
} as const satisfies Record<string, MetricDefinition>;

/** Series the launcher exports about itself and its workers. */
export const LAUNCHER_METRICS = {
  restarts: def('mtl_launcher_restarts_total', 'counter', 'Times the launcher restarted its workers.'),
  workerExits: def(
    'mtl_worker_exits_total',
    'counter',
    'Worker process exits, by rank and cause (exit, signal, stopped).',
    ['rank', 'cause'],
  ),
  workerUp: def(
    'mtl_worker_up',
    'gauge',
    '1 while the worker of a rank runs and answers scrapes; 0 after it exited or went silent.',
    ['rank'],
  ),
  workerMetricsAge: def(
    'mtl_worker_metrics_age_seconds',
    'gauge',
    'Age of the worker snapshot served (0 when it answered this scrape).',
    ['rank'],
  ),
  scrapeTimeouts: def(
    'mtl_worker_scrape_timeouts_total',
    'counter',
    'Scrapes a worker did not answer in time (a busy or hung worker).',
    ['rank'],
  ),
  info: def('mtl_launcher_info', 'gauge', 'Constant 1, labelled with the node rank of this launcher.', [
    'node_rank',
  ]),
} as const satisfies Record<string, MetricDefinition>;

/** Prefix of the Node/process default metrics of workers (the launcher's own are unprefixed). */
export const WORKER_DEFAULT_PREFIX = 'mtl_worker_';

/** Names of the worker families the launcher sums over the node. */
export const NODE_SUMMED: ReadonlySet<string> = new Set(
  Object.values(WORKER_METRICS as Record<string, MetricDefinition>)
    .filter((d) => d.aggregation === 'node')
    .map((d) => d.name),
);

/** The sample names a family produces in the exposition format. */
export function sampleNames(d: Pick<MetricDefinition, 'name' | 'type'>): string[] {
  return d.type === 'histogram' ? [`${d.name}_bucket`, `${d.name}_sum`, `${d.name}_count`] : [d.name];
}
