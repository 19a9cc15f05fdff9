// Per-iteration losses as JSON lines, one object per iteration, under the release's names where it
// has them: `{"iter":1,"id_loss":…,"da_loss":…,"age_loss":…,"lr":…}`, for FAS `d1_logit`,
// `d3_logit`, `g_logit`, `fas_id_loss`, `fas_age_loss`; then the rates and `loss_scale` /
// `fas_loss_scale` (after the step). As the release's logger, every value is the
// mean over ranks (one small all-reduce per iteration); rank 0 writes.
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ProcessGroup } from '@mtlface/collective';
import type { IterationReport, TrainConfig } from '@mtlface/train';

/** Our loss names → the release's. The rest keep their names. */
const RELEASE_NAMES: Record<string, string> = {
  fr_id: 'id_loss',
  fr_da: 'da_loss',
  fr_age: 'age_loss',
  fas_g_id: 'fas_id_loss',
  fas_g_age: 'fas_age_loss',
};

/** The values of one iteration under their logged names, release names first (same order on every rank). */
export function lossRecord(report: IterationReport): Array<[string, number]> {
  const named = Object.entries(report.losses).map(([k, v]): [string, number] => [RELEASE_NAMES[k] ?? k, v]);
  const release = new Set(Object.values(RELEASE_NAMES));
  return [
    ...named.filter(([k]) => release.has(k)),
    ...Object.entries(report.logits),
    ...named.filter(([k]) => !release.has(k)),
  ];
}

/** Where the file goes: `losses_file`, else `<checkpoint_dir>/losses.jsonl`. */
export function lossesPath(cfg: TrainConfig): string {
  return cfg.losses_file ?? join(cfg.checkpoint_dir, 'losses.jsonl');
}

/**
 * Keeps the lines of iterations 1..`start` (a resumed run continues the file; a fresh one starts it
 * empty), written to a temporary name and renamed so a crash leaves the old file or the new one.
 */
export function truncateIterations(path: string, start: number): void {
  mkdirSync(dirname(path), { recursive: true });
  const kept: string[] = [];
  if (existsSync(path)) {
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      let iter: unknown;
      try {
        iter = (JSON.parse(line) as { iter?: unknown }).iter;
      } catch {
        continue; // an empty or torn line (a crash mid-append)
      }
      if (typeof iter === 'number' && iter <= start) kept.push(line + '\n');
    }
  }
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, kept.join(''));
  renameSync(tmp, path);
}

export class LossesLog {
  private constructor(
    private readonly path: string,
    private readonly rank: number,
    private readonly group: ProcessGroup | null,
  ) {}

  /** Every rank opens it (each takes part in the mean); rank 0 truncates to `start` and writes. */
  static open(cfg: TrainConfig, rank: number, group: ProcessGroup | null, start: number): LossesLog {
    const path = lossesPath(cfg);
    if (rank === 0) truncateIterations(path, start);
    return new LossesLog(path, rank, group);
  }

  async append(report: IterationReport): Promise<void> {
    const record = lossRecord(report);
    if (this.group && this.group.worldSize > 1) {
      const values = new Float32Array(record.map(([, v]) => v));
      await this.group.allReduce(values, { op: 'mean' });
      record.forEach((r, i) => (r[1] = values[i]!));
    }
    if (this.rank !== 0) return;
    const lr = report.lr;
    const rates: Array<[string, number | undefined]> = [
      ['lr', lr.fr],
      ['g_lr', lr.fas],
      ['d_lr', lr.fas_d],
      // The loss scale after the step (the same on every rank: overflows are decided after the all-reduce).
      ['loss_scale', report.scale.fr],
      ['fas_loss_scale', report.scale.fas],
    ];
    const line = {
      iter: report.iteration + 1,
      ...Object.fromEntries(record),
      ...Object.fromEntries(rates.filter(([, v]) => v !== undefined)),
    };
    appendFileSync(this.path, JSON.stringify(line) + '\n');
  }
}

/**
 * `steps.jsonl`, beside the losses file: what a run measured rather than computed (images per second,
 * step and data-wait seconds, rank 0's view) and the validation scores. Kept apart from the losses,
 * which a resumed run reproduces byte for byte while timings never repeat.
 */
export function stepsPath(cfg: TrainConfig): string {
  return join(dirname(lossesPath(cfg)), 'steps.jsonl');
}

export class StepsLog {
  private constructor(private readonly path: string | null) {}

  /** Rank 0 cuts the file to iterations 1..`start` and writes; other ranks write nothing. */
  static open(cfg: TrainConfig, rank: number, start: number): StepsLog {
    if (rank !== 0) return new StepsLog(null);
    const path = stepsPath(cfg);
    truncateIterations(path, start);
    return new StepsLog(path);
  }

  append(iter: number, values: Record<string, number>): void {
    if (!this.path) return;
    const finite = Object.entries(values).filter(([, v]) => Number.isFinite(v));
    appendFileSync(this.path, JSON.stringify({ iter, ...Object.fromEntries(finite) }) + '\n');
  }
}
