import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number): void;
  stop(): void;
}

/**
 * A progress bar on a terminal; when piped, plain lines ("label: 40/100 (40%)") at most every 10 %
 * or 5 s, so logs stay readable.
 */
export function createProgress(label: string, total: number, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      { format: `${label} [{bar}] {percentage}% | {value}/{total} | eta {eta_formatted}`, stream, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0);
    return { update: (d) => bar.update(d), stop: () => bar.stop() };
  }
  let lastPct = -1;
  let lastMs = 0;
  let last = -1;
  const print = (d: number): void => {
    const pct = total > 0 ? Math.floor((100 * d) / total) : 100;
    stream.write(`${label}: ${d}/${total} (${pct}%)\n`);
    lastPct = pct;
    lastMs = Date.now();
    last = d;
  };
  return {
    update(d) {
      const pct = total > 0 ? Math.floor((100 * d) / total) : 100;
      if (pct >= lastPct + 10 || Date.now() - lastMs > 5000 || (d === total && last !== d)) print(d);
    },
    stop() {},
  };
}
