// Shared by scripts/experiment-aifr.mjs and experiment-fas.mjs (packages/eval/EXPERIMENTS.md): the
// statistics of the preregistered test, and running the project's commands for one run.
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** ln Γ(x), x > 0 (Lanczos, g = 7, n = 9). */
function lnGamma(x) {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  x -= 1;
  let a = c[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the regularized incomplete beta (modified Lentz). */
function betaFraction(a, b, x) {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 300; m++) {
    const m2 = 2 * m;
    for (const num of [
      (m * (b - m) * x) / ((a + m2 - 1) * (a + m2)),
      (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1)),
    ]) {
      d = 1 + num * d;
      if (Math.abs(d) < tiny) d = tiny;
      c = 1 + num / c;
      if (Math.abs(c) < tiny) c = tiny;
      d = 1 / d;
      h *= d * c;
    }
    if (Math.abs(d * c - 1) < 1e-15) break;
  }
  return h;
}

/** I_x(a, b), the regularized incomplete beta function. */
export function incompleteBeta(x, a, b) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  return x < (a + 1) / (a + b + 2)
    ? (front * betaFraction(a, b, x)) / a
    : 1 - (front * betaFraction(b, a, 1 - x)) / b;
}

/** P(T ≤ t) for Student's t with `df` degrees of freedom. */
export function studentCdf(t, df) {
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/** The p-quantile of Student's t (bisection on the CDF). */
export function studentQuantile(p, df) {
  if (!(p > 0 && p < 1) || !(df > 0)) throw new RangeError(`studentQuantile: p ${p}, df ${df}`);
  let lo = -1e4;
  let hi = 1e4;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (studentCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Mean and two-sided t-interval of `xs` (n ≥ 2) at `level`: mean ± t((1+level)/2, n−1)·s/√n. */
export function tInterval(xs, level = 0.95) {
  const n = xs.length;
  if (n < 2) throw new RangeError(`tInterval: needs at least 2 values, got ${n}`);
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1));
  const t = studentQuantile((1 + level) / 2, n - 1);
  const half = (t * sd) / Math.sqrt(n);
  return { n, mean, sd, t, half, lo: mean - half, hi: mean + half };
}

/** Per-key differences a − b over the keys both have (paired by seed), sorted by key. */
export function pairedDifferences(a, b) {
  return [...a.keys()]
    .filter((k) => b.has(k))
    .sort((x, y) => x - y)
    .map((k) => a.get(k) - b.get(k));
}

export function processorAndLoad() {
  return {
    processor: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    loadavg: loadavg().map((x) => +x.toFixed(2)),
  };
}

function command(dist) {
  const p = join(ROOT, dist);
  if (!existsSync(p)) throw new Error(`${dist} is missing: run \`npm run build\` first`);
  return p;
}
export const MTL_DATA = () => command('workers/dist/mtl-data.js');
export const MTL_LAUNCH = () => command('launcher/dist/cli.js');
export const MTL_FACE = () => command('workers/dist/mtl-face.js');

/** Runs `node args…`, its output appended to `log` (and collected); rejects on a non-zero exit. */
export function runNode(args, log, timeoutMs) {
  return new Promise((resolve, reject) => {
    const out = createWriteStream(log, { flags: 'a' });
    out.write(`\n$ node ${args.join(' ')}\n`);
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d) => {
      stdout += d;
      out.write(d);
    });
    child.stderr.on('data', (d) => out.write(d));
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    // Ctrl-C / SIGTERM go on to the running child; each child's forwarders go with it (the experiment
    // runs dozens of children: kept, they piled up past Node's listener warning).
    const forward = (sig) => child.kill(sig);
    for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, forward);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      for (const sig of ['SIGINT', 'SIGTERM']) process.off(sig, forward);
      clearTimeout(timer);
      out.end();
      if (code === 0) resolve(stdout);
      else
        reject(new Error(`node ${args.slice(0, 2).join(' ')} … exited with ${signal ?? code} (log: ${log})`));
    });
  });
}

export const jsonLines = (text) =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));

/** Writes `obj` as JSON atomically (a half-written result.json is never read as finished). */
export function writeJson(file, obj) {
  writeFileSync(`${file}.tmp`, JSON.stringify(obj, null, 2) + '\n');
  renameSync(`${file}.tmp`, file);
}

export const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'));

/**
 * The schedule overrides of budget × the protocol's (EXPERIMENTS.md): `iterations`, and for the AIFR
 * recipe its warm-up and lr milestones, read from the config and multiplied. Budget 1 → none.
 */
export function budgetOverrides(configFile, budget) {
  if (budget === 1) return [];
  const cfg = parseYaml(readFileSync(configFile, 'utf8'));
  const out = [`iterations=${cfg.iterations * budget}`];
  if (cfg.mode === 'aifr')
    out.push(
      `fr_optim.warmup=${cfg.fr_optim.warmup * budget}`,
      `fr_optim.milestones=[${cfg.fr_optim.milestones.map((m) => m * budget).join(',')}]`,
    );
  return out;
}

/**
 * --out DIR --data DIR --table --set k=v --budget N --amendment 2, with the defaults of `npm run
 * experiment:*`. --budget N (an integer ≥ 1, default 1) runs every training N× as long, its lr schedule
 * stretched with it (EXPERIMENTS.md, amendment 1); its runs go to runs/experiment-xN unless --out says
 * otherwise. --amendment 2 is --budget 3 plus amendment 2's runs (the plain age estimator, seeds 3–5);
 * --amendment 3 adds amendment 3's (the FAS generator continued to 2400 iterations).
 */
export function parseArgs(argv) {
  const o = {
    out: undefined,
    data: join(ROOT, 'data/bench64'),
    table: false,
    set: [],
    budget: 1,
    amendment: 0,
  };
  let budgetGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--table') o.table = true;
    else if (a === '--set') {
      // Extra key=value overrides for every training run (a smoke test: --set iterations=20); they are
      // recorded in each result.json and make the runs something other than the protocol's.
      const v = argv[++i];
      if (!v || !v.includes('=')) throw new Error(`--set needs key=value, got ${v}`);
      o.set.push(v);
    } else if (a === '--budget') {
      const v = argv[++i];
      if (!/^[1-9]\d*$/.test(v ?? '')) throw new Error(`--budget needs a whole multiple ≥ 1, got ${v}`);
      o.budget = Number(v);
      budgetGiven = true;
    } else if (a === '--amendment') {
      // Amendment 2 (EXPERIMENTS.md): amendment 1's budget (3×) and folder, plus the plain age estimator
      // and seeds 3–5; its runs of seeds 0–2 are amendment 1's, reused.
      const v = argv[++i];
      // (amendment 1 is --budget 3 alone; 3 is 2 plus the longer FAS run.)
      if (v !== '2' && v !== '3')
        throw new Error(`--amendment: 2 or 3 add runs (amendment 1 is --budget 3), got ${v}`);
      o.amendment = Number(v);
    } else if (a === '--out' || a === '--data') {
      const v = argv[++i];
      if (!v) throw new Error(`${a} needs a directory`);
      o[a.slice(2)] = v;
    } else
      throw new Error(
        `unknown argument ${a} (expected --out DIR, --data DIR, --table, --set key=value, --budget N, --amendment 2|3)`,
      );
  }
  if (o.amendment >= 2) {
    if (budgetGiven && o.budget !== 3)
      throw new Error(`--amendment ${o.amendment} runs at --budget 3, got --budget ${o.budget}`);
    o.budget = 3;
  }
  o.out ??= join(ROOT, o.budget === 1 ? 'runs/experiment' : `runs/experiment-x${o.budget}`);
  mkdirSync(o.out, { recursive: true });
  return o;
}

/** Renders the bench64 set into `data` when its lists are absent. */
export async function ensureData(data, log) {
  if (existsSync(join(data, 'pairs.txt'))) return;
  console.log(`experiment: rendering the bench64 set into ${data}`);
  await runNode([MTL_DATA(), 'synth', '--preset', 'bench64', '--out', data], log, 30 * 60e3);
}

export const pct = (x) => (100 * x).toFixed(1);
