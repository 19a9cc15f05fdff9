// The deployment files' own launcher command lines, run for real outside containers: two
// "hosts" as network namespaces over a veth pair (needs root), each running the command its
// Compose service / Kubernetes pod would, in a directory laid out like the image's /app with the
// deployment's volumes at their mount points (Slurm: one shared checkout), training a short run of the demo model
// (configs/demo-smoke.yaml).
//
// What stands in for the container runtime (and nothing else is changed):
// - the image's entry point `node /app/bin/mtl-launch.js` (ENTRYPOINT of docker/Dockerfile.*)
//   runs the launcher from its TypeScript sources (bin/mtl-launch.js imports the build of the same);
// - /app is a directory of links to the repository (the image's `COPY . .`), with `data` and `runs`
//   linked to the volumes the deployment mounts at /app/data and /app/runs;
// - Compose: the trainer's command and environment come from `docker-compose config` run with
//   each host's environment (the `trainer-cpu` service's are checked equal); host networking =
//   the namespace's network; the data set is rendered by the `synth` service's command;
// - Kubernetes: the container's command/args with `$(VAR)` expanded from the pod's env as the
//   kubelet does (NODE_RANK = the completion index, MTL_RUN_TOKEN from the Secret, CONFIG set to
//   the smoke config: the one value a user edits), pod 0's DNS name `mtlface-0.mtlface` resolved
//   to host 0's address through /etc/netns/<ns>/hosts (which `ip netns exec` mounts over
//   /etc/hosts), and CUDA_VISIBLE_DEVICES=0 standing in for one GPU of the device plugin, so
//   `--nproc-per-node=gpu` stays as written and means one worker;
// - Slurm: docker/slurm/mtlface.sbatch itself runs on each node with the SLURM_* a 2-node job's
//   task gets (node names resolved as above, CUDA_VISIBLE_DEVICES=0 as Slurm sets for one GPU),
//   `srun` a stand-in that runs the step's command as that node's task.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import {
  LAUNCHER_CLI,
  REPO_ROOT,
  SOURCE_EXEC_ARGV,
  collect,
  linesByRank,
  spawnLauncher,
  tempDir,
} from './support/launch.js';
import type { LaunchResult } from './support/launch.js';
import { netnsHosts } from './support/netns.js';
import { k8sManifest } from './support/k8s.js';

const DOCKER = join(REPO_ROOT, 'docker');
const SMOKE_CONFIG = 'configs/demo-smoke.yaml';
const RUN_TIMEOUT_MS = 240_000;

/** WORKDIR and ENTRYPOINT of an image, read from its Dockerfile. */
function imageOf(dockerfile: string): { workdir: string; entrypoint: string[] } {
  const text = readFileSync(join(DOCKER, dockerfile), 'utf8');
  const workdirs = [...text.matchAll(/^WORKDIR (\S+)$/gm)].map((m) => m[1]!);
  const entry = /^ENTRYPOINT (\[.*\])$/m.exec(text);
  assert.ok(workdirs.length > 0 && entry, `${dockerfile}: WORKDIR and ENTRYPOINT`);
  return { workdir: workdirs.at(-1)!, entrypoint: JSON.parse(entry[1]!) as string[] };
}

/**
 * The image's working directory on this machine: links to the repository's top-level entries
 * (what `COPY . .` puts there), and each volume linked at its mount point below it.
 */
function appDir(dir: string, workdir: string, mounts: Array<{ source: string; target: string }>): string {
  const app = join(dir, 'app');
  mkdirSync(app, { recursive: true });
  const mounted = new Set<string>();
  for (const m of mounts) {
    assert.ok(
      m.target.startsWith(`${workdir}/`),
      `volume ${m.target} is below the image's WORKDIR ${workdir}`,
    );
    const rel = m.target.slice(workdir.length + 1);
    assert.ok(!rel.includes('/'), `volume ${m.target}: one level below ${workdir}`);
    symlinkSync(m.source, join(app, rel));
    mounted.add(rel);
  }
  for (const entry of readdirSync(REPO_ROOT)) {
    if (entry === '.git' || mounted.has(entry)) continue;
    symlinkSync(join(REPO_ROOT, entry), join(app, entry));
  }
  return app;
}

/** `node <workdir>/bin/mtl-launch.js args...` → the launcher args (the part the test runs from source). */
function launcherArgs(argv: string[], workdir: string): string[] {
  assert.deepEqual(argv.slice(0, 2), ['node', `${workdir}/bin/mtl-launch.js`], 'the image entry point');
  return argv.slice(2);
}

/** Both hosts' launchers, started together; resolves when both exited. */
async function runHosts(
  ns: [string, string],
  hostArgs: [string[], string[]],
  cwd: [string, string],
  env: [NodeJS.ProcessEnv, NodeJS.ProcessEnv],
): Promise<LaunchResult[]> {
  return Promise.all(
    [0, 1].map((i) =>
      collect(
        spawnLauncher(hostArgs[i]!, { prefix: ['ip', 'netns', 'exec', ns[i]!], cwd: cwd[i]!, env: env[i]! }),
        RUN_TIMEOUT_MS,
      ),
    ),
  );
}

/** A run of the smoke config on 2 nodes x 1 worker completed: both launchers, checkpoint, logs. */
function assertTrained(
  runs: LaunchResult[],
  runsDir: [string, string],
  runId: string,
  logDir = 'logs',
): void {
  for (const [node, r] of runs.entries())
    assert.equal(
      r.code,
      0,
      `node ${node} exited ${r.code ?? r.signal}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`,
    );
  const rank0 = (linesByRank(runs[0]!.stdout).get(0) ?? []).join('\n');
  assert.match(rank0, /initial state identical on 2 rank\(s\)/, 'a process group across the two hosts');
  assert.match(rank0, /it 2\/2 /, 'both iterations ran');
  assert.match(rank0, /checkpoint: runs\/demo-smoke\/ckpt-0000002\.safetensors/);
  // The checkpoint landed in host 0's runs volume, written by a world of 2.
  const sidecar = JSON.parse(readFileSync(join(runsDir[0], 'demo-smoke', 'ckpt-0000002.json'), 'utf8'));
  assert.equal(sidecar.iteration, 2);
  assert.equal(sidecar.worldSize, 2);
  assert.ok(existsSync(join(runsDir[0], 'demo-smoke', 'ckpt-0000002.safetensors')));
  // --log-dir=runs/<logDir>: each host's worker logs are in its runs volume.
  for (const [node, dir] of runsDir.entries()) {
    const log = join(dir, logDir, runId, 'attempt_0', `rank${node}`, 'stdout.log');
    assert.ok(existsSync(log), `${log} exists`);
    assert.match(readFileSync(log, 'utf8'), /backend: /);
  }
}

describe('deployment command lines on two network-namespace hosts', { concurrency: true }, () => {
  const tmp = tempDir('mtl-deploy-');
  // Each deployment gets its own pair of hosts: both use port 29500 and 9400 as written.
  const composeHosts = netnsHosts('dpc');
  const k8sHosts = netnsHosts('dpk');
  const slurmHosts = netnsHosts('dps');
  const skip = composeHosts.skip ?? k8sHosts.skip ?? slurmHosts.skip;
  const dataDir = join(tmp.dir, 'data'); // the dataset volume (read-only in both deployments)
  const image = imageOf('Dockerfile.gpu');

  before(() => {
    if (skip) return;
    // A tiny synthetic set where configs/demo-smoke.yaml looks for it (data/synth below /app),
    // rendered by the Compose `synth` service's command (entry point node /app/bin/mtl-data.js).
    const synth = parse(
      execFileSync('docker-compose', ['-f', join(DOCKER, 'compose.yaml'), 'config'], {
        env: {
          PATH: process.env.PATH ?? '',
          DATA_DIR: dataDir,
          SYNTH_IDENTITIES: '8',
          SYNTH_IMAGES: '6',
          SYNTH_PAIRS: '8',
        },
        encoding: 'utf8',
      }),
    ).services.synth;
    const mounts = (synth.volumes as string[]).map((v) => {
      const [source, target] = v.split(':');
      return { source: source!, target: target! };
    });
    mkdirSync(dataDir, { recursive: true });
    const app = appDir(join(tmp.dir, 'synth'), image.workdir, mounts);
    const argv = [...(synth.entrypoint as string[]), ...(synth.command as string[])];
    assert.deepEqual(argv.slice(0, 2), ['node', `${image.workdir}/bin/mtl-data.js`]);
    execFileSync(
      process.execPath,
      [...SOURCE_EXEC_ARGV, join(REPO_ROOT, 'workers', 'src', 'mtl-data.ts'), ...argv.slice(2)],
      { cwd: app, stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 },
    );
    assert.ok(existsSync(join(dataDir, 'synth', 'train.txt')), 'synth wrote DATA_DIR/synth/train.txt');
  });
  after(() => {
    composeHosts.tearDown();
    k8sHosts.tearDown();
    slurmHosts.tearDown();
    tmp.cleanup();
  });

  test(
    'compose: the trainer service command of each host trains the demo model across both',
    { skip },
    async () => {
      const { ns, addr } = composeHosts;
      const runId = 'deploy-compose';
      const hosts = [0, 1].map((node) => {
        const dir = join(tmp.dir, `compose-${node}`);
        const runsDir = join(dir, 'runs');
        mkdirSync(runsDir, { recursive: true });
        // The two-host example of docker/README.md, with the smoke config and one worker per host.
        const hostEnv = {
          NNODES: '2',
          NODE_RANK: String(node),
          MASTER_ADDR: addr[0],
          RUN_ID: runId,
          MTL_RUN_TOKEN: 'deploy-secret',
          NPROC_PER_NODE: '1',
          CONFIG: SMOKE_CONFIG,
          DATA_DIR: dataDir,
          RUNS_DIR: runsDir,
        };
        const out = execFileSync('docker-compose', ['-f', join(DOCKER, 'compose.yaml'), 'config'], {
          env: { PATH: process.env.PATH ?? '', ...hostEnv },
          encoding: 'utf8',
        });
        const services = parse(out).services;
        const trainer = services.trainer;
        assert.equal(trainer.network_mode, 'host');
        // The CPU image's service runs the same launcher command line (its default differs
        // only in --nproc-per-node, given here).
        assert.deepEqual(services['trainer-cpu'].command, trainer.command);
        assert.deepEqual(services['trainer-cpu'].volumes, trainer.volumes);
        const mounts = (trainer.volumes as string[]).map((v) => {
          const [source, target] = v.split(':');
          return { source: source!, target: target! };
        });
        const app = appDir(dir, image.workdir, mounts);
        const args = launcherArgs([...image.entrypoint, ...(trainer.command as string[])], image.workdir);
        assert.ok(args.includes(`--node-rank=${node}`) && args.at(-1) === SMOKE_CONFIG, args.join(' '));
        const env = Object.fromEntries(
          Object.entries(trainer.environment as Record<string, string | null>).map(([k, v]) => [k, v ?? '']),
        );
        return { args, app, runsDir, env };
      });
      assert.equal(hosts[0]!.env.MTL_RUN_TOKEN, 'deploy-secret');

      // The image's HEALTHCHECK, run in host 0 with the service's environment while it trains.
      let healthy = false;
      let done = false;
      const probe = (async () => {
        while (!done && !healthy) {
          const code = await new Promise<number | null>((resolve) => {
            const p = spawn(
              'ip',
              ['netns', 'exec', ns[0], process.execPath, join(DOCKER, 'healthcheck.mjs')],
              {
                env: { PATH: process.env.PATH ?? '', ...hosts[0]!.env },
                stdio: 'ignore',
              },
            );
            p.on('close', resolve);
          });
          healthy = code === 0;
          if (!healthy) await new Promise((r) => setTimeout(r, 1000));
        }
      })();
      const runs = await runHosts(
        ns,
        [hosts[0]!.args, hosts[1]!.args],
        [hosts[0]!.app, hosts[1]!.app],
        [hosts[0]!.env, hosts[1]!.env],
      );
      done = true;
      await probe;
      assertTrained(runs, [hosts[0]!.runsDir, hosts[1]!.runsDir], runId);
      assert.ok(healthy, 'docker/healthcheck.mjs reported the launcher healthy during the run');
    },
  );

  test(
    'kubernetes: the Indexed Job pod command of each index trains the demo model across both',
    { skip },
    async () => {
      const { ns, addr } = k8sHosts;
      const manifest = k8sManifest();
      const { masterName } = manifest;
      // `kubectl create secret generic mtlface-token --from-literal=token=...`
      const secrets: Record<string, Record<string, string>> = { 'mtlface-token': { token: 'k8s-secret' } };
      assert.equal(
        manifest.pod(0, secrets).env.CONFIG,
        'configs/aifr-ir50.yaml',
        'the manifest trains the AIFR recipe',
      );
      k8sHosts.resolve({ [masterName]: addr[0] });

      const hosts = [0, 1].map((index) => {
        const dir = join(tmp.dir, `k8s-${index}`);
        const runsDir = join(dir, 'runs');
        mkdirSync(runsDir, { recursive: true });
        const { argv, env, volumeMounts } = manifest.pod(index, secrets, { CONFIG: SMOKE_CONFIG });
        const mounts = volumeMounts
          .filter((m) => m.name !== 'shm') // /dev/shm: the pod's memory volume, not below /app
          .map((m) => {
            assert.ok(m.name === 'data' || m.name === 'runs', `volume ${m.name}`);
            return { source: m.name === 'data' ? dataDir : runsDir, target: m.mountPath };
          });
        const app = appDir(dir, image.workdir, mounts);
        const args = launcherArgs(argv, image.workdir);
        assert.ok(
          args.includes(`--node-rank=${index}`) && args.includes(`--master-addr=${masterName}`),
          args.join(' '),
        );
        return { args, app, runsDir, env: { ...env, CUDA_VISIBLE_DEVICES: '0' } };
      });

      const runs = await runHosts(
        ns,
        [hosts[0]!.args, hosts[1]!.args],
        [hosts[0]!.app, hosts[1]!.app],
        [hosts[0]!.env, hosts[1]!.env],
      );
      assertTrained(runs, [hosts[0]!.runsDir, hosts[1]!.runsDir], hosts[0]!.env.RUN_ID!);
    },
  );
  test(
    'slurm: the sbatch script on each node of a 2-node allocation trains the demo model across both',
    { skip },
    async () => {
      const { ns, addr } = slurmHosts;
      // A Slurm job runs in a checkout on a shared filesystem: one directory for both nodes, laid
      // out like /app (data and runs linked in), the nodes' names resolving to their addresses.
      const dir = join(tmp.dir, 'slurm');
      const runsDir = join(dir, 'runs');
      mkdirSync(runsDir, { recursive: true });
      const checkout = appDir(dir, image.workdir, [
        { source: dataDir, target: `${image.workdir}/data` },
        { source: runsDir, target: `${image.workdir}/runs` },
      ]);
      slurmHosts.resolve({ gpu01: addr[0], gpu02: addr[1] });
      // srun's stand-in: the job step's command as this node's task, the image-less
      // `node bin/mtl-launch.js` run from the launcher's sources (bin/ imports its build).
      const bin = join(dir, 'bin');
      mkdirSync(bin);
      writeFileSync(
        join(bin, 'srun'),
        `#!/bin/bash
while [[ $# -gt 0 && $1 == -* ]]; do shift; done
if [[ $1 == node && $2 == bin/mtl-launch.js ]]; then
  shift 2
  exec "$MTL_TEST_NODE" ${SOURCE_EXEC_ARGV.slice(0, -1).join(' ')} "$MTL_TEST_TSX" "$MTL_TEST_LAUNCHER" "$@"
fi
exec "$@"
`,
        { mode: 0o755 },
      );
      const jobId = '4242';
      const runs = await Promise.all(
        [0, 1].map((node) =>
          collect(
            spawn('ip', ['netns', 'exec', ns[node], 'bash', join(DOCKER, 'slurm', 'mtlface.sbatch')], {
              cwd: checkout,
              env: {
                ...process.env,
                PATH: `${bin}:${process.env.PATH ?? ''}`,
                MTL_TEST_NODE: process.execPath,
                MTL_TEST_TSX: import.meta.resolve('tsx'),
                MTL_TEST_LAUNCHER: LAUNCHER_CLI,
                // What Slurm sets for a task of `--nodes=2 --gpus-per-node=1` (one GPU here).
                SLURM_JOB_ID: jobId,
                SLURM_NNODES: '2',
                SLURM_NODEID: String(node),
                SLURM_JOB_NODELIST: 'gpu[01-02]',
                CUDA_VISIBLE_DEVICES: '0',
                // Generated once by the batch script and inherited by both tasks in a real job.
                MTL_RUN_TOKEN: 'slurm-secret',
                CONFIG: SMOKE_CONFIG,
              },
              stdio: ['ignore', 'pipe', 'pipe'],
            }),
            RUN_TIMEOUT_MS,
          ),
        ),
      );
      assertTrained(runs, [runsDir, runsDir], `slurm-${jobId}`, `logs-${jobId}`);
    },
  );
});
