// `mtl-face plot RUN`: the run's per-iteration curves as PNG charts, without Prometheus or Grafana.
import type { Command } from 'commander';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { plotLossLog } from '../plot/losses.js';
import { reportErrors } from './cli.js';

/** A run directory holds `losses.jsonl`; a .jsonl file is used as given. */
export function lossLogOf(run: string): string {
  if (!existsSync(run)) throw new Error(`${run} does not exist`);
  const file = statSync(run).isDirectory() ? join(run, 'losses.jsonl') : run;
  if (!existsSync(file))
    throw new Error(
      `${file} does not exist: the run writes it (losses_file, default <checkpoint_dir>/losses.jsonl)`,
    );
  return file;
}

export function register(program: Command): void {
  program
    .command('plot')
    .description("draw a run's losses, learning rate and loss scale, img/s and validation as PNG charts")
    .argument('<run>', 'the run directory (checkpoint_dir) or its losses.jsonl')
    .option('--out <dir>', 'where the PNGs go (default: <run>/plots)')
    .action(
      reportErrors('plot', async (run: string, o: { out?: string }) => {
        const log = lossLogOf(run);
        const out = o.out ?? join(statSync(run).isDirectory() ? run : join(log, '..'), 'plots');
        const r = await plotLossLog(log, out);
        for (const f of r.written) console.log(f);
        if (r.missing.length)
          console.log(`${log} (${r.iterations} iterations) has ${r.missing.join(', ')}: not plotted`);
      }),
    );
}
