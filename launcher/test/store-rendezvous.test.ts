import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { StoreClient, StoreServer } from '@mtlface/collective';
import { LaunchError } from '../src/errors.js';
import type { NodeSpec, StopReason } from '../src/rendezvous.js';
import { StoreRendezvous } from '../src/store-rendezvous.js';

const TOKEN = 'test-token';

describe('StoreRendezvous', () => {
  const clients: StoreClient[] = [];
  after(async () => {
    for (const c of clients) await c.close();
  });

  /** Each test runs on its own store, as each run has its own. */
  const freshServer = () => StoreServer.listen({ host: '127.0.0.1', port: 0, token: TOKEN });

  async function node(
    s: StoreServer,
    spec: Partial<NodeSpec> & { nodeRank: number | null },
    timeoutMs = 5000,
  ) {
    const client = await StoreClient.connect({
      host: '127.0.0.1',
      port: s.port,
      token: TOKEN,
      timeoutMs: 5000,
    });
    clients.push(client);
    const full: NodeSpec = {
      runId: 'run',
      nnodes: 2,
      localWorldSize: 2,
      maxRestarts: 1,
      host: `host${spec.nodeRank ?? 'x'}`,
      pid: 100 + (spec.nodeRank ?? 50),
      hostsStore: spec.nodeRank === 0,
      ...spec,
    };
    return new StoreRendezvous(client, {
      node: full,
      address: `127.0.0.1:${s.port}`,
      timeoutMs,
      leaveTimeoutMs: 500,
    });
  }

  const refusal = (re: RegExp) => (e: unknown) => e instanceof LaunchError && re.test(e.message);

  it('gives every node the same world, ranks laid out by node rank', async () => {
    const s = await freshServer();
    try {
      const nodes = await Promise.all([
        node(s, { nodeRank: 1, nnodes: 3, localWorldSize: 3, maxRestarts: 9 }),
        node(s, { nodeRank: 0, nnodes: 3, localWorldSize: 2, maxRestarts: 4 }),
        node(s, { nodeRank: 2, nnodes: 3, localWorldSize: 1 }),
      ]);
      const worlds = await Promise.all(nodes.map((n) => n.join()));
      assert.deepEqual(
        worlds.map((w) => [w.nodeRank, w.rankOffset, w.worldSize, w.maxRestarts]),
        [
          [1, 2, 6, 4],
          [0, 0, 6, 4],
          [2, 5, 6, 4],
        ],
      );
    } finally {
      await s.close();
    }
  });

  it('numbers nodes without a rank in order of arrival after the host (c10d), and refuses one too many', async () => {
    const s = await freshServer();
    try {
      const host = await node(s, { nodeRank: null, hostsStore: true, nnodes: 3, localWorldSize: 2 });
      const a = await node(s, { nodeRank: null, nnodes: 3, localWorldSize: 3 });
      const b = await node(s, { nodeRank: null, nnodes: 3, localWorldSize: 1 });
      const probe = await StoreClient.connect({
        host: '127.0.0.1',
        port: s.port,
        token: TOKEN,
        timeoutMs: 5000,
      });
      clients.push(probe);
      const joins = [host.join(), a.join()];
      // b starts only once a holds its rank: a is node 1, b node 2.
      await probe.get('mtl-launch/node/1', 5000);
      joins.push(b.join());
      const [wh, wa, wb] = await Promise.all(joins);
      assert.deepEqual(
        [wh, wa, wb].map((w) => [w.nodeRank, w.rankOffset, w.worldSize]),
        [
          [0, 0, 6],
          [1, 2, 6],
          [2, 5, 6],
        ],
      );
      await assert.rejects(
        (await node(s, { nodeRank: null, nnodes: 3 })).join(),
        refusal(/already complete \(3 nodes joined\)/),
      );
    } finally {
      await s.close();
    }
  });

  it('refuses a wrong run id naming both ids, and a different node count', async () => {
    const s = await freshServer();
    try {
      const n0 = await node(s, { nodeRank: 0, runId: 'alpha' });
      const p0 = n0.join();
      await assert.rejects(
        (await node(s, { nodeRank: 1, runId: 'beta' })).join(),
        refusal(/run id is 'beta' but the store .* serves run 'alpha'/),
      );
      await assert.rejects(
        (await node(s, { nodeRank: 1, runId: 'alpha', nnodes: 3 })).join(),
        refusal(/--nnodes 3 but run 'alpha' has 2 nodes/),
      );
      await (await node(s, { nodeRank: 1, runId: 'alpha' })).join();
      await p0;
    } finally {
      await s.close();
    }
  });

  it('refuses a duplicate node rank and a join after the world is complete', async () => {
    const s = await freshServer();
    try {
      const n0 = await node(s, { nodeRank: 0, nnodes: 3 });
      const p0 = n0.join();
      const n1 = await node(s, { nodeRank: 1, nnodes: 3 });
      const p1 = n1.join();
      await assert.rejects(
        (await node(s, { nodeRank: 1, nnodes: 3, host: 'intruder' })).join(),
        refusal(/node rank 1 of run 'run' is already taken by host1 \(launcher pid 101\)/),
      );
      await (await node(s, { nodeRank: 2, nnodes: 3 })).join();
      await Promise.all([p0, p1]);
      await assert.rejects(
        (await node(s, { nodeRank: 2, nnodes: 3 })).join(),
        refusal(/already complete \(3 nodes joined\)/),
      );
    } finally {
      await s.close();
    }
  });

  it('names the nodes that did not join within the timeout', async () => {
    const s = await freshServer();
    try {
      const n0 = await node(s, { nodeRank: 0, nnodes: 3 }, 300);
      await assert.rejects(
        n0.join(),
        refusal(/timed out after 0\.3s: node rank\(s\) 1, 2 of run 'run' did not join/),
      );
    } finally {
      await s.close();
    }
  });

  it('lets the first stop reason win, agrees on the next attempt and waits for every node to stop', async () => {
    const s = await freshServer();
    try {
      const [a, b] = [await node(s, { nodeRank: 0 }), await node(s, { nodeRank: 1 })];
      await Promise.all([a.join(), b.join()]);
      assert.equal(await a.pollStop(0), null);
      const first: StopReason = {
        kind: 'failure',
        nodeRank: 1,
        rank: 3,
        localRank: 1,
        code: 2,
        signal: null,
        atMs: 1,
        stderrTail: ['x'],
      };
      assert.deepEqual(await b.requestStop(0, first), first);
      assert.deepEqual(
        await a.requestStop(0, { kind: 'abort', nodeRank: 0, signal: 'SIGINT', atMs: 2 }),
        first,
      );
      assert.deepEqual(await a.pollStop(0), first);
      let bStopped = false;
      const barrier = a.awaitAllStopped(0).then(() => assert.ok(bStopped, 'the barrier waited for node 1'));
      await new Promise((r) => setTimeout(r, 100));
      bStopped = true;
      await b.awaitAllStopped(0);
      await barrier;
      assert.deepEqual(await Promise.all([a.nextAttempt(0), b.nextAttempt(0)]), [1, 1]);
      await a.markSucceeded(1);
      assert.equal(await b.pollAllSucceeded(1), false);
      await b.markSucceeded(1);
      assert.equal(await a.pollAllSucceeded(1), true);
    } finally {
      await s.close();
    }
  });

  it('names the nodes that never stopped their workers', async () => {
    const s = await freshServer();
    try {
      const [a, b] = [await node(s, { nodeRank: 0 }, 300), await node(s, { nodeRank: 1 }, 300)];
      await Promise.all([a.join(), b.join()]);
      await assert.rejects(
        a.awaitAllStopped(0),
        refusal(/node rank\(s\) 1 did not stop their workers of attempt 0/),
      );
    } finally {
      await s.close();
    }
  });
});
