// docker/k8s/mtlface.yaml's pods when pod 0's DNS name (mtlface-0.mtlface, through the headless
// Service) is published only after the pods start, as a cluster DNS does a moment after a pod is
// created. With `backoffLimit: 0`, a launcher that gave up at the first failed lookup would fail
// the whole Job: node 0 looks its own name up again until --rdzv-timeout, and so does node 1.
//
// Two pods as two network namespaces (needs root), each running its pod's command line as the
// kubelet would (test/support/k8s.ts), CONFIG set to a small worker script instead of a recipe;
// the name appears in both namespaces' /etc/hosts (what `ip netns exec` mounts over /etc/hosts)
// a few seconds after both launchers started.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import {
  REPO_ROOT,
  collect,
  linesByRank,
  spawnLauncher,
  tempDir,
  waitFor,
  writeScript,
} from './support/launch.js';
import { k8sManifest } from './support/k8s.js';
import { netnsHosts } from './support/netns.js';

const LATE_MS = 3000;
const hosts = netnsHosts('kdn');
const tmp = tempDir('mtl-k8s-dns-');
after(() => {
  hosts.tearDown();
  tmp.cleanup();
});

/** Pod `index`'s command line (CONFIG = `config`) as the kubelet would run it, in host `index`'s namespace. */
function startPod(index: 0 | 1, name: string, config: string) {
  const { argv, env } = k8sManifest().pod(
    index,
    { 'mtlface-token': { token: 'dns-secret' } },
    { CONFIG: config },
  );
  assert.deepEqual(argv.slice(0, 2), ['node', '/app/bin/mtl-launch.js'], 'the image entry point');
  // The pod's /app: runs/logs lands here; node_modules for the launcher run from source.
  const cwd = join(tmp.dir, name);
  mkdirSync(cwd);
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(cwd, 'node_modules'));
  const child = spawnLauncher(argv.slice(2), {
    prefix: ['ip', 'netns', 'exec', hosts.ns[index]],
    cwd,
    // One GPU of the device plugin stands in for the manifest's 8: --nproc-per-node=gpu as written.
    env: { ...env, CUDA_VISIBLE_DEVICES: '0' },
  });
  return { child, done: collect(child, 120_000) };
}

test(
  'kubernetes: pod 0 waits for its own DNS name to appear, then both pods run',
  { skip: hosts.skip },
  async () => {
    const manifest = k8sManifest();
    const timeout = manifest
      .pod(0, { 'mtlface-token': { token: 't' } })
      .argv.find((a) => a.startsWith('--rdzv-timeout='));
    assert.ok(timeout && Number(timeout.split('=')[1]) * 1000 > LATE_MS, `the manifest's ${timeout}`);
    const worker = writeScript(
      tmp.dir,
      'worker.mjs',
      'console.log(`rank ${process.env.RANK} of ${process.env.WORLD_SIZE} on node ${process.env.GROUP_RANK}`);\n',
    );
    hosts.resolve({}); // localhost only: the Service has not published pod 0 yet
    const started = Date.now();
    const pods = ([0, 1] as const).map((index) => startPod(index, `pod-${index}`, worker));
    // A pod 0 that gave up leaves pod 1 waiting for --rdzv-timeout: end it then.
    void pods[0]!.done.then((r) => r.code !== 0 && pods[1]!.child.kill('SIGKILL'));
    await new Promise((r) => setTimeout(r, LATE_MS));
    hosts.resolve({ [manifest.masterName]: hosts.addr[0] });
    const appeared = Date.now() - started;
    const runs = await Promise.all(pods.map((p) => p.done));
    for (const [i, r] of runs.entries())
      assert.equal(
        r.code,
        0,
        `pod ${i} exited ${r.code ?? r.signal}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`,
      );
    assert.match(
      runs[0]!.stderr,
      new RegExp(
        `--master-addr ${manifest.masterName.replace('.', '\\.')} does not resolve yet .*retrying for up to 900s`,
      ),
    );
    assert.ok(runs[0]!.ms >= appeared - 500, `node 0 ran until after the name appeared (${runs[0]!.ms} ms)`);
    assert.deepEqual(linesByRank(runs[0]!.stdout).get(0), ['rank 0 of 2 on node 0']);
    assert.deepEqual(linesByRank(runs[1]!.stdout).get(1), ['rank 1 of 2 on node 1']);
  },
);

test(
  'kubernetes: a pod stopped while its own DNS name is still missing exits at once on SIGTERM',
  { skip: hosts.skip },
  async () => {
    const worker = writeScript(tmp.dir, 'never.mjs', 'process.exit(1);\n');
    hosts.resolve({}); // the name never appears
    const { child, done } = startPod(0, 'pod-stopped', worker);
    // Waiting for the name: the launcher has said so.
    let stderr = '';
    child.stderr!.on('data', (d: string) => (stderr += d));
    assert.ok(await waitFor(() => /does not resolve yet/.test(stderr), 30_000), stderr);
    const stoppedAt = Date.now();
    child.kill('SIGTERM'); // what the kubelet sends when the pod is deleted
    const r = await done;
    assert.equal(r.code, 128 + 15, `exit ${r.code ?? r.signal}\n${r.stderr}`);
    assert.match(r.stderr, /received SIGTERM while no worker was running; exiting/);
    assert.ok(Date.now() - stoppedAt < 5000, `exited ${Date.now() - stoppedAt} ms after SIGTERM`);
  },
);
