import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Dealer } from 'zeromq';
import { pack } from 'msgpackr';
import { StoreClient, StoreServer } from '../src/index.js';

const TOKEN = 'run-token-1';
const text = (b: Uint8Array | null) => (b === null ? null : Buffer.from(b).toString('utf8'));

async function withStore(
  fn: (server: StoreServer, connect: (name?: string) => Promise<StoreClient>) => Promise<void>,
) {
  const server = await StoreServer.listen({ host: '127.0.0.1', port: 0, token: TOKEN });
  const clients: StoreClient[] = [];
  const connect = async (name?: string) => {
    const c = await StoreClient.connect({
      host: '127.0.0.1',
      port: server.port,
      token: TOKEN,
      timeoutMs: 5000,
      name,
    });
    clients.push(c);
    return c;
  };
  try {
    await fn(server, connect);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await server.close();
  }
}

test('set, get, tryGet and delete round-trip strings and bytes', async () => {
  await withStore(async (_s, connect) => {
    const c = await connect();
    await c.set('a', 'hello');
    await c.set('b', new Uint8Array([0, 255, 7]));
    assert.equal(text(await c.get('a')), 'hello');
    assert.deepEqual([...(await c.get('b'))], [0, 255, 7]);
    assert.equal(await c.tryGet('missing'), null);
    assert.equal(await c.delete('a'), true);
    assert.equal(await c.delete('a'), false);
    assert.equal(await c.tryGet('a'), null);
  });
});

test('get and wait block until another client sets the keys', async () => {
  await withStore(async (_s, connect) => {
    const [a, b] = await Promise.all([connect('a'), connect('b')]);
    let got = false;
    const pending = a.get('late').then((v) => {
      got = true;
      return text(v);
    });
    let waited = false;
    const waiting = a.wait(['k1', 'k2']).then(() => (waited = true));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(got, false);
    assert.equal(waited, false, 'wait is pending while none of its keys is set');
    await b.set('late', 'now');
    assert.equal(await pending, 'now');
    await b.set('k1', '1');
    // The round trip of a get on another key is later than any reply the set of k1 could trigger.
    await b.get('k1');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(waited, false, 'wait is still pending with one of its two keys set');
    await b.set('k2', '2');
    await waiting;
    assert.equal(waited, true);
  });
});

test('timeouts name the store address and the key', async () => {
  await withStore(async (server, connect) => {
    const c = await connect();
    await assert.rejects(c.get('never', 150), (err: Error) => {
      assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${server.port}`));
      assert.match(err.message, /get "never" timed out after 150 ms/);
      return true;
    });
    await assert.rejects(c.wait(['x', 'y'], 100), /wait \["x", "y"\] timed out after 100 ms/);
    // The client still works after timeouts.
    await c.set('never', 'ok');
    assert.equal(text(await c.get('never', 1000)), 'ok');
  });
});

test('concurrent add from several clients counts every increment exactly once', async () => {
  await withStore(async (_s, connect) => {
    const clients = await Promise.all([0, 1, 2, 3].map((i) => connect(`c${i}`)));
    const results = await Promise.all(
      clients.flatMap((c) => Array.from({ length: 50 }, () => c.add('counter', 1))),
    );
    assert.deepEqual(
      [...results].sort((x, y) => x - y),
      Array.from({ length: 200 }, (_, i) => i + 1),
    );
    assert.equal(text(await clients[0]!.get('counter')), '200');
    assert.equal(await clients[1]!.add('counter', -50), 150);
  });
});

test('compareSet lets exactly one of many racing clients win', async () => {
  await withStore(async (_s, connect) => {
    const clients = await Promise.all([0, 1, 2, 3, 4].map((i) => connect(`c${i}`)));
    const results = (await Promise.all(clients.map((c, i) => c.compareSet('leader', null, `rank${i}`)))).map(
      text,
    );
    const winner = results[0]!;
    assert.ok(/^rank[0-4]$/.test(winner));
    assert.ok(
      results.every((r) => r === winner),
      `all see the same leader: ${results.join(',')}`,
    );
    // A CAS increment loop from every client: no lost updates.
    // Values carry the writer so that a lost race can never look like a win.
    await clients[0]!.set('n', '0:init');
    await Promise.all(
      clients.map(async (c, id) => {
        for (let i = 0; i < 20; i++) {
          for (;;) {
            const cur = text(await c.get('n'))!;
            const next = `${Number(cur.split(':')[0]) + 1}:${id}`;
            if (text(await c.compareSet('n', cur, next)) === next) break;
          }
        }
      }),
    );
    const final = text(await clients[0]!.get('n'))!;
    assert.equal(final.split(':')[0], '100');
    // Mismatch leaves the value and returns it; expected on an absent key returns empty.
    assert.equal(text(await clients[0]!.compareSet('n', '7', '8')), final);
    assert.equal((await clients[0]!.compareSet('absent', 'x', 'y')).length, 0);
    assert.equal(await clients[0]!.tryGet('absent'), null);
  });
});

test('a client with the wrong token is rejected clearly and the store keeps serving', async () => {
  const rejects: string[] = [];
  const server = await StoreServer.listen({
    host: '127.0.0.1',
    port: 0,
    token: TOKEN,
    onReject: (r) => rejects.push(r),
  });
  try {
    await assert.rejects(
      StoreClient.connect({
        host: '127.0.0.1',
        port: server.port,
        token: 'stranger',
        timeoutMs: 2000,
        name: 'mallory',
      }),
      /rejected: wrong run token/,
    );
    assert.ok(rejects.some((r) => r.includes('mallory') && r.includes('wrong run token')));
    const good = await StoreClient.connect({
      host: '127.0.0.1',
      port: server.port,
      token: TOKEN,
      timeoutMs: 2000,
    });
    await good.set('k', 'v');
    assert.equal(text(await good.get('k')), 'v');
    await good.close();
  } finally {
    await server.close();
  }
});

test('garbage frames and oversized messages never crash the store', async () => {
  const rejects: string[] = [];
  const server = await StoreServer.listen({
    host: '127.0.0.1',
    port: 0,
    token: TOKEN,
    maxMessageBytes: 4096,
    onReject: (r) => rejects.push(r),
  });
  const raw = new Dealer({ linger: 0 });
  raw.connect(`tcp://127.0.0.1:${server.port}`);
  try {
    await raw.send([Buffer.from([0xc1, 0xff, 0x00])]); // 0xc1 is never valid msgpack
    await raw.send([Buffer.from('a'), Buffer.from('b')]);
    await raw.send([pack([1, 2, 3])]);
    await raw.send([pack({ id: 5, token: TOKEN, op: 'set', key: 'k' })]); // no value
    await raw.send([pack({ id: 6, token: TOKEN, op: 'explode', key: 'k' })]);
    await raw.send([pack({ id: 7, token: TOKEN, op: 'add', key: 'k', delta: 0.5 })]);
    raw.receiveTimeout = 2000;
    const replies = [];
    for (let i = 0; i < 4; i++) replies.push((await import('msgpackr')).unpack((await raw.receive())[0]!));
    assert.deepEqual(
      replies.map((r: { id: number; ok: boolean }) => [r.id, r.ok]),
      [
        [-1, false],
        [5, false],
        [6, false],
        [7, false],
      ],
    );
    assert.match((replies[0] as { error: string }).error, /request is not a map/);
    assert.match((replies[1] as { error: string }).error, /field "value" must be bytes/);
    assert.match((replies[2] as { error: string }).error, /unknown op "explode"/);
    // Oversized: libzmq drops the connection of a peer that exceeds the limit.
    await raw.send([Buffer.alloc(64 * 1024, 1)]);
    const good = await StoreClient.connect({
      host: '127.0.0.1',
      port: server.port,
      token: TOKEN,
      timeoutMs: 1000,
    });
    await good.set('still', 'alive');
    assert.equal(text(await good.get('still')), 'alive');
    await assert.rejects(good.set('big', Buffer.alloc(8192)), /timed out/);
    await assert.rejects(good.set('huge', Buffer.alloc(17 * 1024 * 1024)), /exceeds the 16777216-byte limit/);
    await good.close();
    assert.ok(rejects.some((r) => r.includes('undecodable')));
    assert.ok(rejects.some((r) => r.includes('2 frames')));
  } finally {
    raw.close();
    await server.close();
  }
});

test('listen on a port in use fails naming host:port, and binds only the given host', async () => {
  const a = await StoreServer.listen({ host: '127.0.0.1', port: 0, token: TOKEN });
  try {
    await assert.rejects(
      StoreServer.listen({ host: '127.0.0.1', port: a.port, token: TOKEN }),
      new RegExp(`cannot bind 127\\.0\\.0\\.1:${a.port} \\(address already in use\\)`),
    );
    // Bound to 127.0.0.1 only: the same port is still free on another loopback address.
    const b = await StoreServer.listen({ host: '127.0.0.2', port: a.port, token: TOKEN });
    await b.close();
  } finally {
    await a.close();
  }
});

test('connect to an absent store times out naming its address', async () => {
  const s = await StoreServer.listen({ host: '127.0.0.1', port: 0, token: TOKEN });
  const port = s.port;
  await s.close();
  await assert.rejects(
    StoreClient.connect({ host: '127.0.0.1', port, token: TOKEN, timeoutMs: 200 }),
    new RegExp(`store 127\\.0\\.0\\.1:${port}: connect timed out after 200 ms`),
  );
});
