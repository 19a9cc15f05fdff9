// Rank 0's progress: a bar with ETA on a terminal, one plain line per log interval when piped,
// and under mtl-launch on a terminal (MTL_PROGRESS=tty) a status line the launcher redraws.
import cliProgress from 'cli-progress';

export interface TrainProgress {
  update(iteration: number, info: { losses: Record<string, number>; imagesPerSec: number }): void;
  stop(): void;
}

export function fmtEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const total = Math.round(seconds); // round once, so 179.6 s reads 3m00s, not 2m60s
  const m = Math.floor(total / 60);
  const s = total % 60;
  return m > 0 ? `${m}m${String(s).padStart(2, '0')}s` : `${s}s`;
}

function fmtLosses(losses: Record<string, number>): string {
  return Object.entries(losses)
    .map(([k, v]) => `${k} ${Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(3)}`)
    .join(' ');
}

/**
 * Marks a line as progress for mtl-launch (launcher/src/console-status.ts holds the same constant):
 * the launcher shows it as its console's redrawn last line instead of printing it.
 */
export const PROGRESS_MARKER = '\u0000mtl-progress\u0000';
/** Updates sent to the launcher at most this often (the last one always). */
const LAUNCHER_REDRAW_MS = 200;

export function createTrainProgress(opts: {
  start: number;
  end: number;
  logInterval: number;
  /** `launcher`: mtl-launch's console is a terminal and redraws the marked lines. */
  tty: boolean | 'launcher';
  log: (line: string) => void;
  /** Where launcher-mode lines go (default stderr). */
  write?: (text: string) => void;
}): TrainProgress {
  const { start, end } = opts;
  const t0 = performance.now();
  const eta = (it: number): number =>
    ((performance.now() - t0) / 1000 / Math.max(1, it - start)) * (end - it);
  if (opts.tty === 'launcher') {
    const write = opts.write ?? ((t: string) => void process.stderr.write(t));
    let lastMs = -Infinity;
    return {
      update(it, info) {
        const now = performance.now();
        if (now - lastMs < LAUNCHER_REDRAW_MS && it !== end) return;
        lastMs = now;
        const pct = Math.floor((100 * it) / end);
        write(
          `${PROGRESS_MARKER}train it ${it}/${end} (${pct}%) | eta ${fmtEta(eta(it))} | ${info.imagesPerSec.toFixed(1)} img/s | ${fmtLosses(info.losses)}\n`,
        );
      },
      stop() {},
    };
  }
  if (opts.tty) {
    const bar = new cliProgress.SingleBar(
      {
        format:
          'train [{bar}] {percentage}% | {value}/{total} | eta {eta_formatted} | {imgs} img/s | {losses}',
        stream: process.stderr,
        hideCursor: true,
        etaBuffer: 20,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(end, start, { imgs: '-', losses: '' });
    return {
      update: (it, info) =>
        bar.update(it, { imgs: info.imagesPerSec.toFixed(1), losses: fmtLosses(info.losses).slice(0, 80) }),
      stop: () => bar.stop(),
    };
  }
  return {
    update(it, info) {
      if (it % opts.logInterval !== 0 && it !== end) return;
      const pct = Math.floor((100 * it) / end);
      opts.log(
        `it ${it}/${end} (${pct}%) | ${fmtLosses(info.losses)} | ${info.imagesPerSec.toFixed(1)} img/s | eta ${fmtEta(eta(it))}`,
      );
    },
    stop() {},
  };
}
