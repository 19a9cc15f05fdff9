import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { join } from 'node:path';
import { launchFromSource, linesByRank, REPO_ROOT, tempDir, writeScript } from './support/launch.js';

/**
 * Two nodes in separate network namespaces joined by a veth pair, each with its own private
 * address: the rendezvous and the restart protocol cross a real (virtual) link. Needs root.
 */
function sh(...args: string[]): { ok: boolean; err: string } {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8' });
  return { ok: r.status === 0, err: (r.stderr ?? '') + (r.error?.message ?? '') };
}

const id = `${process.pid % 10000}${Math.floor(Math.random() * 100)}`;
const ns = [`mtlL${id}a`, `mtlL${id}b`];
const veth = [`vL${id}a`, `vL${id}b`];
// A random /24 in 10.0.0.0/8 so that concurrent runs do not collide.
const net = `10.${100 + Math.floor(Math.random() * 100)}.${Math.floor(Math.random() * 250)}`;
const addr = [`${net}.1`, `${net}.2`];

function setUp(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root for ip netns';
  const steps = [
    ['ip', 'netns', 'add', ns[0]!],
    ['ip', 'netns', 'add', ns[1]!],
    ['ip', 'link', 'add', veth[0]!, 'type', 'veth', 'peer', 'name', veth[1]!],
    ['ip', 'link', 'set', veth[0]!, 'netns', ns[0]!],
    ['ip', 'link', 'set', veth[1]!, 'netns', ns[1]!],
    ...[0, 1].flatMap((i) => [
      ['ip', '-n', ns[i]!, 'addr', 'add', `${addr[i]}/24`, 'dev', veth[i]!],
      ['ip', '-n', ns[i]!, 'link', 'set', veth[i]!, 'up'],
      ['ip', '-n', ns[i]!, 'link', 'set', 'lo', 'up'],
    ]),
  ];
  for (const step of steps) {
    const r = sh(...step);
    if (!r.ok) return `${step.join(' ')} failed: ${r.err.trim()}`;
  }
  return undefined;
}

function tearDown(): void {
  for (const n of ns) sh('ip', 'netns', 'del', n);
  sh('ip', 'link', 'del', veth[0]!); // only left over if moving it into the namespace failed
}

describe('mtl-launch across network namespaces', () => {
  const tmp = tempDir();
  const why = setUp();
  after(() => {
    tearDown();
    tmp.cleanup();
  });

  it('runs two nodes with their own addresses and restarts both after one fails', { skip: why }, async () => {
    const script = writeScript(
      tmp.dir,
      'node.mjs',
      `const e = process.env;
       console.log([e.MTL_RESTART_COUNT, e.RANK, e.WORLD_SIZE, e.GROUP_RANK, e.MASTER_ADDR].join(' '));
       if (e.MTL_RESTART_COUNT === '0' && e.RANK === '1') setTimeout(() => process.exit(4), 300);
       else if (e.MTL_RESTART_COUNT === '0') setInterval(() => {}, 1000);`,
    );
    const common = [
      '--nnodes',
      '2',
      '--nproc',
      '1',
      '--master-addr',
      addr[0]!,
      '--master-port',
      '29531',
      '--run-id',
      'ns',
    ];
    const runs = await Promise.all(
      [0, 1].map((node) =>
        launchFromSource(
          [...common, '--node-rank', String(node), '--max-restarts', '1', '--shutdown-timeout', '2', script],
          {
            prefix: ['ip', 'netns', 'exec', ns[node]!],
            env: { MTL_RUN_TOKEN: 'ns-secret' },
            timeoutMs: 90_000,
          },
        ),
      ),
    );
    for (const [node, r] of runs.entries()) {
      assert.equal(r.code, 0, `node ${node}: ${r.stderr}`);
      assert.match(r.stderr, /attempt 0 failed: rank 1 \(node 1\) exited with code 4; restarting/);
      assert.deepEqual(linesByRank(r.stdout).get(node), [
        `0 ${node} 2 ${node} ${addr[0]}`,
        `1 ${node} 2 ${node} ${addr[0]}`,
      ]);
    }
  });

  it(
    'lets the workers of both namespaces form a process group and all-reduce, again after a restart',
    { skip: why },
    async () => {
      const worker = join(REPO_ROOT, 'test', 'support', 'pg-worker.ts');
      const common = [
        '--nnodes',
        '2',
        '--nproc',
        '2',
        '--master-addr',
        addr[0]!,
        '--master-port',
        '29532',
        '--run-id',
        'nspg',
      ];
      const runs = await Promise.all(
        [0, 1].map((node) =>
          launchFromSource(
            [
              ...common,
              '--node-rank',
              String(node),
              '--max-restarts',
              '1',
              '--shutdown-timeout',
              '2',
              worker,
            ],
            {
              prefix: ['ip', 'netns', 'exec', ns[node]!],
              env: { MTL_RUN_TOKEN: 'ns-secret', FAIL_RANK: '3', MTL_PG_TIMEOUT_MS: '20000' },
              timeoutMs: 120_000,
            },
          ),
        ),
      );
      for (const [node, r] of runs.entries()) {
        assert.equal(r.code, 0, `node ${node}: ${r.stderr}`);
        assert.match(r.stderr, /attempt 0 failed: rank 3 \(node 1\) exited with code 4; restarting/);
        for (const rank of [2 * node, 2 * node + 1]) {
          // 1 + 2 + 3 + 4 = 10 on every rank, in both attempts
          assert.deepEqual(linesByRank(r.stdout).get(rank), [
            'attempt 0 world 4 sum 10 10',
            'attempt 1 world 4 sum 10 10',
          ]);
        }
      }
    },
  );
});
