import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  collect,
  freePort,
  launchFromSource,
  linesByRank,
  spawnLauncher,
  tempDir,
  waitFor,
  writeScript,
} from './support/launch.js';

/** Two launchers on loopback acting as the two nodes of one run. */
async function twoNodes(script: string[], extra: string[] = [], perNode: Array<string[]> = [[], []]) {
  const port = String(await freePort());
  const common = [
    '--nnodes',
    '2',
    '--nproc',
    '2',
    '--master-addr',
    '127.0.0.1',
    '--master-port',
    port,
    '--run-id',
    'mn',
  ];
  const env = { MTL_RUN_TOKEN: 'loopback-secret' };
  return Promise.all(
    [0, 1].map((node) =>
      launchFromSource(
        [...common, '--node-rank', String(node), ...extra, ...(perNode[node] ?? []), ...script],
        {
          env,
          timeoutMs: 90_000,
        },
      ),
    ),
  );
}

/**
 * Two launchers of one run (one worker each) spawned directly, so a test can signal one; resolves
 * once both workers run `script`, which must create `<dir>/<marker><RANK>` when up.
 */
async function twoLiveNodes(opts: {
  runId: string;
  script: string;
  dir: string;
  marker: string;
  extra: string[];
}) {
  const port = String(await freePort());
  const args = (node: number) => [
    '--nnodes',
    '2',
    '--nproc',
    '1',
    '--master-port',
    port,
    '--run-id',
    opts.runId,
    '--node-rank',
    String(node),
    ...opts.extra,
    opts.script,
    opts.dir,
  ];
  const env = { MTL_RUN_TOKEN: `${opts.runId}-secret` };
  const nodes = [spawnLauncher(args(0), { env }), spawnLauncher(args(1), { env })] as const;
  const results = [collect(nodes[0], 90_000), collect(nodes[1], 90_000)] as const;
  const up = (r: number) => existsSync(join(opts.dir, `${opts.marker}${r}`));
  assert.ok(await waitFor(() => up(0) && up(1), 60_000), 'both workers started');
  return { nodes, results };
}

const upScript = (marker: string) =>
  `import { writeFileSync } from 'node:fs';
   writeFileSync(process.argv[2] + '/${marker}' + process.env.RANK, '');
   setInterval(() => {}, 1000);`;

describe('mtl-launch on two nodes (loopback)', () => {
  const tmp = tempDir();
  after(tmp.cleanup);

  it('gives the four workers of two nodes distinct global ranks in one world', async () => {
    const script = writeScript(
      tmp.dir,
      'env.mjs',
      `const e = process.env;
       console.log([e.RANK, e.LOCAL_RANK, e.WORLD_SIZE, e.GROUP_RANK, e.GROUP_WORLD_SIZE, e.MTL_RUN_TOKEN].join(' '));`,
    );
    const [n0, n1] = await twoNodes([script]);
    assert.equal(n0!.code, 0, n0!.stderr);
    assert.equal(n1!.code, 0, n1!.stderr);
    const seen = [...linesByRank(n0!.stdout), ...linesByRank(n1!.stdout)].map(([rank, lines]) => [
      rank,
      lines[0],
    ]);
    assert.deepEqual(
      seen.sort((a, b) => Number(a[0]) - Number(b[0])),
      [
        [0, '0 0 4 0 2 loopback-secret'],
        [1, '1 1 4 0 2 loopback-secret'],
        [2, '2 0 4 1 2 loopback-secret'],
        [3, '3 1 4 1 2 loopback-secret'],
      ],
    );
  });

  it("restarts both nodes together when one node's worker fails", async () => {
    const script = writeScript(
      tmp.dir,
      'flaky.mjs',
      `const attempt = process.env.MTL_RESTART_COUNT;
       console.log('attempt ' + attempt);
       if (attempt === '0' && process.env.RANK === '2') setTimeout(() => process.exit(5), 500);
       else if (attempt === '0') setInterval(() => {}, 1000);`,
    );
    const [n0, n1] = await twoNodes([script], ['--max-restarts', '2', '--shutdown-timeout', '2']);
    assert.equal(n0!.code, 0, n0!.stderr);
    assert.equal(n1!.code, 0, n1!.stderr);
    for (const n of [n0!, n1!]) {
      assert.match(
        n.stderr,
        /attempt 0 failed: rank 2 \(node 1\) exited with code 5; restarting all workers \(restart 1 of 2\)/,
      );
    }
    const last = new Map(
      [...linesByRank(n0!.stdout), ...linesByRank(n1!.stdout)].map(([r, l]) => [r, l.at(-1)]),
    );
    assert.deepEqual([...last.entries()].sort(), [
      [0, 'attempt 1'],
      [1, 'attempt 1'],
      [2, 'attempt 1'],
      [3, 'attempt 1'],
    ]);
  });

  it('fails every node, naming the remote root cause, when no restart is left', async () => {
    const script = writeScript(
      tmp.dir,
      'fatal.mjs',
      `if (process.env.RANK === '3') { console.error('CUDA error: out of memory'); setTimeout(() => process.exit(9), 300); }
       else setInterval(() => {}, 1000);`,
    );
    const [n0, n1] = await twoNodes([script], ['--shutdown-timeout', '2']);
    for (const n of [n0!, n1!]) {
      assert.equal(n.code, 1, n.stderr);
      assert.match(n.stderr, /root cause: rank 3 \(node 1, local rank 1, pid \d+\) exited with code 9/);
      assert.match(n.stderr, /last stderr lines of rank 3:\n.* {2}CUDA error: out of memory/);
    }
  });

  it('refuses a node with the wrong run id, and the waiting node names the missing one', async () => {
    const script = writeScript(tmp.dir, 'noop.mjs', '');
    const [n0, n1] = await twoNodes([script], ['--rdzv-timeout', '4'], [[], ['--run-id', 'other']]);
    assert.equal(n1!.code, 1);
    assert.match(
      n1!.stderr,
      /^mtl-launch: rendezvous refused: this node's run id is 'other' but the store at 127\.0\.0\.1:\d+ serves run 'mn'\n$/,
    );
    assert.equal(n0!.code, 1);
    assert.match(n0!.stderr, /rendezvous timed out after 4s: node rank\(s\) 1 of run 'mn' did not join/);
  });

  it('stops the surviving node promptly when the other launcher is killed', async () => {
    const script = writeScript(tmp.dir, 'forever.mjs', upScript('up'));
    const {
      nodes: [, n1],
      results: [r0, r1],
    } = await twoLiveNodes({
      runId: 'hb',
      script,
      dir: tmp.dir,
      marker: 'up',
      extra: ['--heartbeat-timeout', '2', '--shutdown-timeout', '1'],
    });
    n1.kill('SIGKILL');
    const killedAt = Date.now();
    const r = await r0;
    await r1;
    assert.equal(r.code, 1);
    assert.match(r.stderr, /the launcher of node\(s\) 1 stopped answering for 2s/);
    assert.ok(Date.now() - killedAt < 2000 + 10000, `node 0 took ${Date.now() - killedAt} ms to notice`);
  });

  it("stops every node without restarting when one node's launcher is signalled", async () => {
    const script = writeScript(tmp.dir, 'sig.mjs', upScript('sig-up'));
    const {
      nodes: [, n1],
      results: [p0, p1],
    } = await twoLiveNodes({
      runId: 'sig',
      script,
      dir: tmp.dir,
      marker: 'sig-up',
      extra: ['--max-restarts', '3', '--shutdown-timeout', '2'],
    });
    n1.kill('SIGTERM');
    const [r0, r1] = await Promise.all([p0, p1]);
    assert.equal(r1.code, 143, r1.stderr);
    assert.equal(r0.code, 1, r0.stderr);
    assert.match(r0.stderr, /node 1 was stopped by SIGTERM; stopped 1 worker\(s\) of attempt 0/);
    assert.doesNotMatch(r0.stderr + r1.stderr, /restarting/);
  });
});
