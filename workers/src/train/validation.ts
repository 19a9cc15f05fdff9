// Held-out verification during training: every rank loads the pairs sets and embeds its share
// (all-gathered), rank 0 logs the results and exports them as mtl_validation_score.
import * as tf from '@tensorflow/tfjs-core';
import type { ProcessGroup } from '@mtlface/collective';
import type { WorkerMetrics } from '@mtlface/metrics';
import { broadcastBuffers, type MtlFaceNetworks, type TrainConfig } from '@mtlface/train';
import {
  faceModelFromModules,
  loadPairsSet,
  validate,
  type PairsSet,
  type ValidationReport,
} from '@mtlface/eval/model';

/** One log line per set: `[val] synth-pairs it 200: acc 61.2% ± 6.1 (thr 0.310), TAR@1e-3 4.0%, AUC 0.655`. */
export function formatValidation(iteration: number, report: ValidationReport): string[] {
  const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
  return report.sets.map((s) => {
    const tars = s.tarAtFar.map((t) => `, TAR@${t.far.toExponential(0)} ${pct(t.tar)}`);
    const auc = Number.isFinite(s.auc) ? `, AUC ${s.auc.toFixed(3)}` : '';
    return (
      `[val] ${s.name} it ${iteration}: acc ${pct(s.accuracy)} ± ${(100 * s.accuracyStd).toFixed(1)} ` +
      `(thr ${s.threshold.toFixed(3)})${tars.join('')}${auc} [${s.pairs} pairs, ${report.seconds.toFixed(1)} s]`
    );
  });
}

/** The labels of `mtl_validation_score{set,metric}` for one report (finite values only). */
export function validationScores(
  report: ValidationReport,
): Array<[set: string, metric: string, value: number]> {
  const out: Array<[string, string, number]> = [];
  for (const s of report.sets) {
    out.push([s.name, 'accuracy', s.accuracy], [s.name, 'accuracy_std', s.accuracyStd]);
    out.push([s.name, 'threshold', s.threshold], [s.name, 'auc', s.auc]);
    for (const t of s.tarAtFar) out.push([s.name, `tar@far=${t.far}`, t.tar]);
    for (const b of s.byAgeGap ?? [])
      if (b.pairs > 0) out.push([s.name, `accuracy_gap_${b.label}`, b.accuracy]);
  }
  return out.filter(([, , v]) => Number.isFinite(v));
}

export interface Validator {
  /** Whether iteration `done` (1-based) of a run ending at `end` validates. */
  due(done: number, end: number): boolean;
  run(done: number): Promise<ValidationReport>;
  readonly reports: Array<{ iteration: number; report: ValidationReport }>;
}

export async function createValidator(
  cfg: TrainConfig,
  nets: MtlFaceNetworks,
  ctx: {
    rank: number;
    group: ProcessGroup | null;
    metrics: WorkerMetrics | null;
    log: (l: string) => void;
    /** Where rank 0 records each set's accuracy for the curves (steps.jsonl). */
    steps?: { append(iter: number, values: Record<string, number>): void };
  },
): Promise<Validator> {
  const sets: PairsSet[] = [];
  if (cfg.val_interval > 0) {
    for (const file of cfg.val_pairs) {
      try {
        sets.push(await loadPairsSet(file, { size: cfg.model.input_size }));
      } catch (err) {
        throw new Error(`val_pairs: cannot load ${file}: ${(err as Error).message}`);
      }
    }
  }
  const { rank, group, metrics, log } = ctx;
  const worldSize = group?.worldSize ?? 1;
  const reports: Validator['reports'] = [];
  return {
    reports,
    due: (done, end) => sets.length > 0 && (done % cfg.val_interval === 0 || done === end),
    async run(done) {
      const before = tf.memory().numTensors;
      // Every rank embeds with rank 0's running statistics, the ones checkpoints keep.
      await broadcastBuffers(group, [nets.backbone, nets.estimation]);
      const report = await validate(
        faceModelFromModules({ backbone: nets.backbone, estimation: nets.estimation }),
        sets,
        {
          mirror: true,
          batchSize: cfg.val_batch_size,
          ...(group && worldSize > 1
            ? { shard: { rank, worldSize, allGather: (b: Uint8Array) => group.allGather(b) } }
            : {}),
        },
      );
      const after = tf.memory().numTensors;
      if (after !== before) log(`warning: tensor count went from ${before} to ${after} in validation (leak)`);
      reports.push({ iteration: done, report });
      if (rank === 0) {
        for (const line of formatValidation(done, report)) log(line);
        for (const [set, metric, value] of validationScores(report)) metrics?.validation(set, metric, value);
        ctx.steps?.append(
          done,
          Object.fromEntries(report.sets.map((x) => [`val_${x.name}_accuracy`, x.accuracy])),
        );
      }
      return report;
    },
  };
}
