// The deployment files say what the deployment issue asks: Compose validates with
// docker-compose and reserves the GPUs, the Kubernetes Job derives node rank and master
// address as the launcher expects, the images are multi-stage, non-root and healthy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';

const root = join(import.meta.dirname, '..');
const docker = join(root, 'docker');

function composeConfig(env: Record<string, string>): any {
  const out = execFileSync('docker-compose', ['-f', join(docker, 'compose.yaml'), 'config'], {
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'utf8',
  });
  return parse(out);
}

test('compose: one node by default, all GPUs reserved, launcher on every GPU', () => {
  const cfg = composeConfig({});
  const trainer = cfg.services.trainer;
  assert.equal(trainer.network_mode, 'host');
  assert.equal(trainer.build.dockerfile, 'docker/Dockerfile.gpu');
  assert.equal(trainer.user, '10001:10001', "the image's user by default");
  const devices = trainer.deploy.resources.reservations.devices;
  assert.deepEqual(devices, [{ driver: 'nvidia', count: 'all', capabilities: ['gpu'] }]);
  assert.ok(trainer.command.includes('--nproc-per-node=gpu'));
  assert.ok(trainer.command.includes('--nnodes=1'));
  assert.ok(trainer.command.includes('--node-rank=0'));
  assert.ok(trainer.command.includes('--metrics-port=9400'));
  assert.ok(
    trainer.volumes.some((v: string) => v.endsWith(':/app/data:ro')),
    'dataset volume read-only',
  );
  assert.ok(
    trainer.volumes.some((v: string) => v.endsWith(':/app/runs:rw')),
    'checkpoint volume',
  );
  assert.ok(cfg.services.prometheus && cfg.services.grafana, 'prometheus and grafana services');
  assert.ok(cfg.services.grafana.volumes.some((v: string) => v.includes('grafana/provisioning')));
});

test('compose: a CPU trainer (profile cpu) and the synth tool (profile tools), off by default', () => {
  const cfg = composeConfig({ MTL_UID: '1000', MTL_GID: '1001' });
  const cpu = cfg.services['trainer-cpu'];
  assert.deepEqual(cpu.profiles, ['cpu']);
  assert.equal(cpu.deploy, undefined, 'no GPU reservation on the CPU service');
  assert.equal(cpu.build.dockerfile, 'docker/Dockerfile.cpu');
  assert.ok(cpu.command.includes('--nproc-per-node=1'));
  assert.deepEqual(cpu.volumes, cfg.services.trainer.volumes);
  assert.equal(cfg.services.trainer.user, '1000:1001', 'MTL_UID/MTL_GID pick the user that owns RUNS_DIR');
  assert.equal(cpu.user, '1000:1001');
  const synth = cfg.services.synth;
  assert.deepEqual(synth.profiles, ['tools']);
  assert.deepEqual(synth.entrypoint, ['node', '/app/bin/mtl-data.js']);
  assert.ok(synth.command.includes('--out=data/synth'));
  assert.ok(
    synth.volumes.some((v: string) => v.endsWith(':/app/data:rw')),
    'synth writes the data volume',
  );
});

test('compose: the multi-node environment reaches the launcher flags', () => {
  const cfg = composeConfig({
    NNODES: '2',
    NODE_RANK: '1',
    MASTER_ADDR: '10.1.2.3',
    MASTER_PORT: '29600',
    RUN_ID: 'exp7',
    MTL_RUN_TOKEN: 's3cret',
  });
  const cmd: string[] = cfg.services.trainer.command;
  for (const flag of [
    '--nnodes=2',
    '--node-rank=1',
    '--master-addr=10.1.2.3',
    '--master-port=29600',
    '--run-id=exp7',
  ]) {
    assert.ok(cmd.includes(flag), `${flag} in ${cmd.join(' ')}`);
  }
  assert.equal(cfg.services.trainer.environment.MTL_RUN_TOKEN, 's3cret');
});

test('compose: the files it mounts for Prometheus and Grafana exist', () => {
  readFileSync(join(docker, 'prometheus', 'prometheus.yml'));
  const prom = parse(readFileSync(join(docker, 'prometheus', 'prometheus.yml'), 'utf8'));
  const targets = JSON.stringify(prom.scrape_configs);
  assert.match(targets, /9400/, 'prometheus scrapes the launcher metrics port');
});

test('kubernetes: an Indexed Job behind a headless Service, rank from the completion index', () => {
  const docs = parseAllDocuments(readFileSync(join(docker, 'k8s', 'mtlface.yaml'), 'utf8')).map((d) =>
    d.toJS(),
  );
  const svc = docs.find((d) => d.kind === 'Service');
  const job = docs.find((d) => d.kind === 'Job');
  assert.ok(svc && job);
  assert.equal(svc.spec.clusterIP, 'None');
  assert.equal(job.spec.completionMode, 'Indexed');
  assert.equal(job.spec.completions, job.spec.parallelism);
  const pod = job.spec.template.spec;
  assert.equal(pod.subdomain, svc.metadata.name, 'pods resolvable through the headless service');
  const c = pod.containers[0];
  const env = Object.fromEntries(c.env.map((e: any) => [e.name, e]));
  assert.equal(
    env.NODE_RANK.valueFrom.fieldRef.fieldPath,
    "metadata.annotations['batch.kubernetes.io/job-completion-index']",
  );
  assert.equal(Number(env.NNODES.value), job.spec.completions, 'NNODES matches completions');
  assert.ok(env.MTL_RUN_TOKEN.valueFrom.secretKeyRef, 'run token from a Secret');
  assert.ok(c.args.includes('--node-rank=$(NODE_RANK)'));
  assert.ok(c.args.includes(`--master-addr=${job.metadata.name}-0.${svc.metadata.name}`));
  assert.ok(c.resources.limits['nvidia.com/gpu'] >= 1);
  assert.ok(c.args.includes('--nproc-per-node=gpu'));
  assert.equal(c.args.at(-1), '$(CONFIG)');
  assert.match(env.CONFIG.value, /^configs\/.+\.yaml$/);
  assert.equal(pod.securityContext.runAsUser, 10001, "the image's user");
  assert.equal(pod.securityContext.fsGroup, 10001, 'volumes writable to it');
  const mounts = Object.fromEntries(c.volumeMounts.map((m: any) => [m.name, m.mountPath]));
  assert.equal(mounts.data, '/app/data');
  assert.equal(mounts.runs, '/app/runs');
});

for (const flavour of ['gpu', 'cpu']) {
  test(`Dockerfile.${flavour}: multi-stage, non-root, health check, launcher entry point`, () => {
    const text = readFileSync(join(docker, `Dockerfile.${flavour}`), 'utf8');
    const froms = text.split('\n').filter((l) => /^FROM /.test(l));
    assert.ok(froms.length >= 2, 'multi-stage');
    assert.match(text, /^USER mtl$/m);
    assert.match(text, /^HEALTHCHECK /m);
    assert.match(text, /^ENTRYPOINT \["node", "\/app\/bin\/mtl-launch.js"\]$/m);
    assert.match(text, /npm ci/);
    // The CUDA 11.2 tag NVIDIA still publishes (docker/Dockerfile.gpu says how that was checked).
    if (flavour === 'gpu')
      assert.match(text, /^ARG CUDA_RUNTIME_IMAGE=nvidia\/cuda:11\.2\.2-cudnn8-runtime-ubuntu20\.04$/m);
    // The GPU image is healthy only while its backend loads (mtl-doctor's verdict, exit 0).
    if (flavour === 'gpu')
      assert.match(
        text,
        /^HEALTHCHECK [^\n]*\\\n\s+CMD .*node \/app\/bin\/mtl-doctor\.js --backend tensorflow --master-port 0/m,
      );
  });
}

test('.dockerignore keeps datasets, checkpoints and node_modules out of the context', () => {
  const lines = readFileSync(join(root, '.dockerignore'), 'utf8').split('\n');
  for (const p of ['**/node_modules', 'data', 'runs', '*.safetensors']) assert.ok(lines.includes(p), p);
});

test('slurm example runs the launcher once per node and leaves topology to SLURM_*', () => {
  const text = readFileSync(join(docker, 'slurm', 'mtlface.sbatch'), 'utf8');
  assert.match(text, /#SBATCH --ntasks-per-node=1/);
  assert.match(text, /srun .*mtl-launch/);
  const commands = text.split('\n').filter((l) => !l.startsWith('#'));
  assert.ok(
    !commands.some((l) => /--node-rank|--nnodes|--master-addr/.test(l)),
    'topology flags left to SLURM_*',
  );
});
