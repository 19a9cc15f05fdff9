// The end of a run: rank 0 draws the run's curves next to its losses file (`<dir>/plots/*.png`),
// as `mtl-face plot` does. A chart that cannot be drawn is a warning, never a failed run.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { TrainConfig } from '@mtlface/train';
import { plotLossLog } from '../plot/losses.js';
import { lossesPath } from './losses-log.js';

export async function plotRunCurves(cfg: TrainConfig, log: (line: string) => void): Promise<void> {
  const file = lossesPath(cfg);
  if (!existsSync(file)) return;
  try {
    const r = await plotLossLog(file, join(dirname(file), 'plots'));
    const lacks = r.missing.length ? ` (${r.missing.join(', ')} in ${file})` : '';
    log(`curves: ${r.written.join(', ')}${lacks}`);
  } catch (e) {
    log(`warning: cannot draw the curves of ${file}: ${(e as Error).message.split('\n')[0]}`);
  }
}
