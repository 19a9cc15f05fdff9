// Helpers of the metrics end-to-end tests: free ports, polling, child shutdown,
// a loopback Prometheus server with a temporary TSDB and its query API.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SOURCE_EXEC_ARGV } from '../scripts/source-argv.mjs';
import { freePort } from './support/launch.js';

export const PROMETHEUS = '/usr/bin/prometheus';

/** Polls `fn` (errors count as "not yet") until it returns a truthy value; throws naming `what`. */
export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | null | false>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${String(last)})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** SIGTERM, then SIGKILL after 10 s; resolves once the child exited. */
export function stop(child: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill(signal);
  });
}

export interface Series {
  metric: Record<string, string>;
  value: [number, string];
}

export interface Prometheus {
  child: ChildProcess;
  port: number;
  /** An instant query; throws with Prometheus's error for bad PromQL. */
  query(q: string): Promise<Series[]>;
  /** A range-vector selector's raw samples per series. */
  samples(selector: string): Promise<Array<{ metric: Record<string, string>; values: [number, string][] }>>;
}

/** Starts /usr/bin/prometheus on loopback scraping `target` every `intervalS` seconds. */
export async function startPrometheus(
  dir: string,
  target: string,
  intervalS: number,
  log: (line: string) => void,
): Promise<Prometheus> {
  if (!existsSync(PROMETHEUS)) {
    throw new Error(
      `${PROMETHEUS} missing: install the Debian package prometheus (scripts/install-system-deps.sh)`,
    );
  }
  const port = await freePort();
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    [
      `global: {scrape_interval: ${intervalS}s, scrape_timeout: ${intervalS}s, evaluation_interval: ${intervalS}s}`,
      'scrape_configs:',
      '  - job_name: mtlface',
      `    static_configs: [{targets: ['${target}']}]`,
      '',
    ].join('\n'),
  );
  const child = spawn(
    PROMETHEUS,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  child.stderr!.on('data', (b: Buffer) => log(`prometheus: ${b}`));
  const api = async (q: string) => {
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`);
    const body = (await res.json()) as { status: string; error?: string; data: { result: unknown[] } };
    if (body.status !== 'success') throw new Error(`query ${q}: ${body.error}`);
    return body.data.result;
  };
  return {
    child,
    port,
    query: async (q) => (await api(q)) as Series[],
    samples: async (selector) =>
      (await api(selector)) as Array<{ metric: Record<string, string>; values: [number, string][] }>,
  };
}

export const byRank = (series: Series[]): Record<string, number> =>
  Object.fromEntries(series.map((s) => [s.metric.rank, Number(s.value[1])]));

/** The pid of the launcher's child process that runs `rank` (Linux /proc). */
export function workerPid(launcherPid: number, rank: number): number | null {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== launcherPid) continue;
      const env = readFileSync(`/proc/${name}/environ`, 'utf8').split('\0');
      if (env.includes(`RANK=${rank}`)) return Number(name);
    } catch {
      // a process that just exited
    }
  }
  return null;
}

export interface ScrapedRun {
  /** The test's temporary directory (removed after the test). */
  dir: string;
  /** The launcher's and Prometheus's output, for failure messages. */
  logs: string[];
  /**
   * Starts `mtl-launch --standalone --nproc-per-node=2 --max-restarts=1 --metrics-port=… <args>`
   * from source and a Prometheus scraping it every `scrapeSeconds`.
   */
  launch(
    args: string[],
    opts: { env?: NodeJS.ProcessEnv; scrapeSeconds: number },
  ): Promise<{ launcher: ChildProcess; prom: Prometheus; metricsPort: number }>;
  /** Runs `body`; a failure carries the last logs. */
  check(body: () => Promise<void>): Promise<void>;
}

/** The set-up the Prometheus end-to-end tests share; everything started is stopped after the test. */
export function scrapedRun(t: TestContext, prefix: string): ScrapedRun {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const procs: { launcher?: ChildProcess; prometheus?: Prometheus } = {};
  const logs: string[] = [];
  t.after(async () => {
    await stop(procs.launcher);
    await stop(procs.prometheus?.child);
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    dir,
    logs,
    async launch(args, opts) {
      const metricsPort = await freePort();
      const launcher = (procs.launcher = spawn(
        process.execPath,
        [
          ...SOURCE_EXEC_ARGV,
          join(root, 'launcher/src/cli.ts'),
          '--standalone',
          '--nproc-per-node=2',
          '--max-restarts=1',
          `--metrics-port=${metricsPort}`,
          '--metrics-host=127.0.0.1',
          ...args,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env },
      ));
      launcher.stdout!.on('data', (b: Buffer) => logs.push(b.toString()));
      launcher.stderr!.on('data', (b: Buffer) => logs.push(b.toString()));
      const prom = (procs.prometheus = await startPrometheus(
        dir,
        `127.0.0.1:${metricsPort}`,
        opts.scrapeSeconds,
        (l) => logs.push(l),
      ));
      return { launcher, prom, metricsPort };
    },
    async check(body) {
      try {
        await body();
      } catch (e) {
        throw new Error(`${(e as Error).message}\n--- logs ---\n${logs.join('').slice(-4000)}`, { cause: e });
      }
    },
  };
}
