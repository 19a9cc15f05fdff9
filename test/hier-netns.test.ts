import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { join } from 'node:path';
import { launchFromSource, linesByRank, REPO_ROOT } from './support/launch.js';
import { netnsHosts } from './support/netns.js';

/**
 * The hierarchical all-reduce over real processes: 2 "nodes" (network namespaces joined by a
 * veth pair) × 2 workers. Within a namespace the workers use shared memory, between them tcp over
 * the veth; the group picks the hierarchical algorithm by itself. Needs root.
 */
describe('hierarchical all-reduce on 2 namespace nodes × 2 workers', () => {
  const hosts = netnsHosts('hier');
  after(() => hosts.tearDown());

  it(
    'picks it, uses shared memory within and tcp between the nodes, and matches a float64 reduction bit-identically on all ranks',
    { skip: hosts.skip },
    async () => {
      const worker = join(REPO_ROOT, 'test', 'support', 'hier-worker.ts');
      const common = [
        '--nnodes',
        '2',
        '--nproc',
        '2',
        '--master-addr',
        hosts.addr[0],
        '--master-port',
        '29541',
        '--run-id',
        'hier',
      ];
      const runs = await Promise.all(
        [0, 1].map((node) =>
          launchFromSource([...common, '--node-rank', String(node), worker], {
            prefix: ['ip', 'netns', 'exec', hosts.ns[node]],
            env: { MTL_RUN_TOKEN: 'hier-secret', MTL_PG_TIMEOUT_MS: '20000' },
            timeoutMs: 90_000,
          }),
        ),
      );
      const digests = new Map<string, Set<string>>();
      for (const [node, r] of runs.entries()) {
        assert.equal(r.code, 0, `node ${node}: ${r.stderr}`);
        for (const rank of [2 * node, 2 * node + 1]) {
          const lines = linesByRank(r.stdout).get(rank) ?? [];
          assert.equal(lines.length, 3, `rank ${rank} printed ${JSON.stringify(lines)}`);
          for (const line of lines) {
            const [algo, endpoints, wire, op, ratio, digest] = line.split(' ');
            assert.equal(algo, 'hier', `rank ${rank}: ${line}`);
            // Same node: shared memory; the other node: tcp.
            const want = [0, 1, 2, 3].map((p) =>
              p === rank ? 'self' : Math.floor(p / 2) === node ? 'shm' : 'tcp',
            );
            assert.equal(endpoints, want.join(','), `rank ${rank}`);
            assert.ok(Number(ratio) <= 1, `rank ${rank} ${wire} ${op}: error ${ratio}× the bound`);
            const key = `${wire} ${op}`;
            digests.set(key, (digests.get(key) ?? new Set()).add(digest!));
          }
        }
      }
      for (const [key, set] of digests) assert.equal(set.size, 1, `${key}: results differ between ranks`);
    },
  );
});
