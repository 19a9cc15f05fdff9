// docker/slurm/mtlface.sbatch submitted with `sbatch` to a real two-node Slurm cluster
// (test/support/slurm.ts: munged, slurmctld, and slurmd for nodes n1 and n2 in their own network
// and UTS namespaces; CPUs only; needs root and Debian's slurm-wlm 22.05 + munge).
//
// The script runs as a user would run it on nodes without GPUs, documented in its header:
//   CONFIG=<config> NPROC_PER_NODE=2 sbatch --gpus-per-node=0 --cpus-per-task=2 docker/slurm/mtlface.sbatch
// from a checkout without runs/ (a fresh clone after `npm ci`: the script runs bin/mtl-launch.js,
// the build), with a tiny demo-design config. Nothing in the script is replaced.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { stringify } from 'yaml';
import { loadConfig } from '@mtlface/train';
import { REPO_ROOT, alive } from './support/launch.js';
import { NODES, slurmCluster } from './support/slurm.js';
import type { JobProcess, SlurmCluster } from './support/slurm.js';
import { TINY, dataOverrides, tinySynth } from './train-helpers.js';

const CPUS = 2; // per node: --cpus-per-task and the workers per node
const SHUTDOWN_TIMEOUT_MS = 30_000; // mtl-launch's default --shutdown-timeout, which the script keeps
const JOB_TIMEOUT_MS = 120_000;

/** A checkout as a fresh clone has it: the repository's entries (built by `npm ci`), no runs/. */
function checkout(dir: string): string {
  mkdirSync(dir);
  for (const entry of readdirSync(REPO_ROOT)) {
    if (['.git', 'runs', 'data', 'out'].includes(entry)) continue;
    symlinkSync(join(REPO_ROOT, entry), join(dir, entry));
  }
  return dir;
}

/** One sample of a job's processes per launcher and worker, keyed by pid. */
interface Seen {
  launchers: Map<number, JobProcess>;
  workers: Map<number, JobProcess>;
}

function observe(cluster: SlurmCluster, jobId: string, seen: Seen): void {
  for (const p of cluster.jobProcesses(jobId)) {
    // `node bin/mtl-launch.js ...` itself (srun's command line names it too).
    const [exe, script] = p.cmdline;
    if (exe !== undefined && basename(exe) === 'node' && script === 'bin/mtl-launch.js')
      seen.launchers.set(p.pid, p);
    else if (p.env.RANK !== undefined && p.env.MTL_RUN_TOKEN !== undefined) seen.workers.set(p.pid, p);
  }
}

describe('docker/slurm/mtlface.sbatch on a real two-node Slurm cluster', () => {
  let cluster: SlurmCluster | undefined;
  let skip: string | undefined;
  let dir = '';
  let n = 0;

  before(async () => {
    cluster = await slurmCluster('slm', CPUS);
    skip = cluster.skip;
    if (skip) return;
    // The script runs the build (bin/mtl-launch.js → launcher/dist, workers/dist): bring it up to date.
    execFileSync(process.execPath, [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-b'], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    dir = cluster.dir; // removed with the cluster, on every exit path
  });
  after(() => {
    cluster?.tearDown();
    if (cluster && !cluster.skip)
      assert.deepEqual(cluster.leftovers(), [], 'no Slurm daemon, slurmstepd or job process left running');
  });

  /** Writes the tiny config and submits the script from a fresh checkout; returns what the assertions need. */
  async function submit(overrides: string[], env: NodeJS.ProcessEnv) {
    const c = cluster!;
    const name = `job${++n}`;
    const co = checkout(join(dir, name));
    assert.ok(!existsSync(join(co, 'runs')), 'a fresh checkout has no runs/');
    const cfg = loadConfig(join(REPO_ROOT, 'configs', 'demo.yaml'), [
      ...TINY,
      ...dataOverrides(await tinySynth()),
      'mode=aifr',
      'amp=false',
      'checkpoint_interval=2',
      'log_interval=1',
      `name=${name}`,
      `checkpoint_dir=runs/${name}`,
      ...overrides,
    ]);
    const config = join(dir, `${name}.yaml`);
    writeFileSync(config, stringify(cfg));
    const jobId = c.sbatch(['--gpus-per-node=0', `--cpus-per-task=${CPUS}`, 'docker/slurm/mtlface.sbatch'], {
      cwd: co,
      env: { CONFIG: config, ...env },
    });
    const out = (): string => {
      const f = join(co, `mtlface-${jobId}.out`);
      return existsSync(f) ? readFileSync(f, 'utf8') : '';
    };
    return { jobId, co, name, out };
  }

  test('a job completes: one launcher per node, ranks laid out by node, a checkpoint, the job log', async (t) => {
    if (skip) return t.skip(skip);
    const c = cluster!;
    const { jobId, co, name, out } = await submit(['iterations=4'], { NPROC_PER_NODE: String(CPUS) });
    const seen: Seen = { launchers: new Map(), workers: new Map() };
    await c.waitState(jobId, ['COMPLETED'], JOB_TIMEOUT_MS, () => observe(c, jobId, seen));
    const log = out();
    assert.ok(log !== '', `the job's log mtlface-${jobId}.out is in the submission directory`);
    assert.match(log, /it 4\/4 /, log);
    assert.match(log, new RegExp(`checkpoint: runs/${name}/ckpt-0000004\\.safetensors`));

    // One launcher per node, each in its node's namespace; SLURM_NODEID is its node rank.
    // A worker caught between fork and exec still shows its launcher's command line: a "launcher"
    // whose parent is a launcher is such a child, not a second launcher.
    const launchers = [...seen.launchers.values()].filter((l) => !seen.launchers.has(l.ppid));
    assert.deepEqual(launchers.map((l) => l.node).sort(), [...NODES], 'one mtl-launch on each node');
    for (const l of launchers) assert.equal(l.env.SLURM_NODEID, String(NODES.indexOf(l.node as 'n1')));
    // Workers: children of their node's launcher, ranks 0-1 on n1 and 2-3 on n2.
    const byNode = new Map<string, number[]>();
    for (const w of seen.workers.values()) {
      const parent = seen.launchers.get(w.ppid);
      assert.ok(parent, `rank ${w.env.RANK} (pid ${w.pid}) is a child of a launcher`);
      assert.equal(w.node, parent.node, `rank ${w.env.RANK} runs on its launcher's node`);
      assert.equal(w.env.WORLD_SIZE, String(2 * CPUS));
      byNode.set(w.node!, [...(byNode.get(w.node!) ?? []), Number(w.env.RANK)].sort());
    }
    assert.deepEqual(Object.fromEntries(byNode), { n1: [0, 1], n2: [2, 3] });

    const sidecar = JSON.parse(readFileSync(join(co, 'runs', name, 'ckpt-0000004.json'), 'utf8'));
    assert.equal(sidecar.iteration, 4);
    assert.equal(sidecar.worldSize, 2 * CPUS);
    for (let rank = 0; rank < 2 * CPUS; rank++) {
      const f = join(co, 'runs', `logs-${jobId}`, `slurm-${jobId}`, 'attempt_0', `rank${rank}`, 'stdout.log');
      assert.match(readFileSync(f, 'utf8'), /backend: /, f);
    }
    assert.deepEqual(c.jobProcesses(jobId), [], 'nothing of the job is left running');
  });

  test('a worker killed once: both nodes restart their workers and the job completes', async (t) => {
    if (skip) return t.skip(skip);
    const c = cluster!;
    // Rank 1 is node n2's only worker; it dies at iteration 3 of the first attempt.
    const { jobId, co, name, out } = await submit(['iterations=4'], {
      NPROC_PER_NODE: '1',
      MTL_FAULT_EXIT_AT: '3:1',
    });
    await c.waitState(jobId, ['COMPLETED'], JOB_TIMEOUT_MS);
    const log = out();
    assert.match(log, /killing rank 1 at iteration 3/, log);
    // Each node's launcher restarts its workers (the message comes once from each).
    const restarts = log.match(
      /attempt 0 failed: rank 1 \(node 1\) died by SIGKILL; restarting all workers/g,
    );
    assert.equal(restarts?.length, 2, log);
    assert.match(log, /resuming from .*ckpt-0000002\.safetensors \(iteration 2\)/);
    for (const rank of [0, 1]) {
      const f = join(co, 'runs', `logs-${jobId}`, `slurm-${jobId}`, 'attempt_1', `rank${rank}`, 'stdout.log');
      assert.ok(existsSync(f), `rank ${rank} ran a second attempt (${f})`);
    }
    const sidecar = JSON.parse(readFileSync(join(co, 'runs', name, 'ckpt-0000004.json'), 'utf8'));
    assert.equal(sidecar.iteration, 4);
    assert.equal(sidecar.worldSize, 2);
  });

  test("scancel mid-run: both nodes' workers are gone within the shutdown timeout, no orphans", async (t) => {
    if (skip) return t.skip(skip);
    const c = cluster!;
    const { jobId, out } = await submit(['iterations=100000'], { NPROC_PER_NODE: '1' });
    const seen: Seen = { launchers: new Map(), workers: new Map() };
    // Training on both nodes: a worker on each, and rank 0 has finished an iteration.
    const deadline = Date.now() + JOB_TIMEOUT_MS;
    for (;;) {
      observe(c, jobId, seen);
      const nodes = new Set([...seen.workers.values()].map((w) => w.node));
      if (nodes.size === 2 && /it 1\/100000 /.test(out())) break;
      assert.ok(['PENDING', 'RUNNING'].includes(c.state(jobId)), out());
      assert.ok(Date.now() < deadline, `the job did not start training:\n${out()}\n${c.logs()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const pids = c.jobProcesses(jobId).map((p) => p.pid);
    const start = Date.now();
    c.scancel(jobId);
    while (c.jobProcesses(jobId).length > 0 && Date.now() - start < SHUTDOWN_TIMEOUT_MS)
      await new Promise((r) => setTimeout(r, 100));
    const left = c.jobProcesses(jobId);
    assert.deepEqual(
      left.map((p) => `${p.pid} on ${p.node}: ${p.cmdline.join(' ')}`),
      [],
      `every process of the job ended within ${SHUTDOWN_TIMEOUT_MS} ms of scancel (Slurm's own SIGKILL comes later)`,
    );
    for (const w of seen.workers.values()) assert.ok(!alive(w.pid), `worker rank ${w.env.RANK} is gone`);
    assert.deepEqual(
      pids.filter((p) => alive(p)),
      [],
      'no orphan of the job',
    );
    await c.waitState(jobId, ['CANCELLED'], 30_000);
  });
});
