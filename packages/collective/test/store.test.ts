import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createConnection } from 'node:net';
import { pack, unpack } from 'msgpackr';
import { StoreClient, StoreServer } from '../src/index.js';
import type { StoreReply } from '../src/store/protocol.js';
import { FrameReader, framePrefix } from '../src/transport/frameReader.js';

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

/** A raw TCP connection to the store that speaks frames by hand and collects the decoded replies. */
async function rawConnection(port: number) {
  const sock = createConnection({ host: '127.0.0.1', port });
  await once(sock, 'connect');
  const replies: StoreReply[] = [];
  const reader = new FrameReader(1 << 20, 0, (frame) => replies.push(unpack(frame) as StoreReply));
  sock.on('data', (chunk: Buffer) => reader.push(chunk));
  sock.on('error', () => undefined);
  const closed = new Promise<number>((resolve) => sock.once('close', () => resolve(Date.now())));
  const send = (body: Buffer) => sock.write(Buffer.concat([framePrefix(body.length, 0), body]));
  return { sock, replies, closed, send };
}

/** Polls `cond` until true, failing after `timeoutMs`. */
async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('garbage frames and oversized messages never crash the store', async () => {
  const rejects: string[] = [];
  const server = await StoreServer.listen({
    host: '127.0.0.1',
    port: 0,
    token: TOKEN,
    maxMessageBytes: 4096,
    onReject: (r) => rejects.push(r),
  });
  const raw = await rawConnection(server.port);
  try {
    raw.send(pack({ id: 1, token: TOKEN, op: 'ping' }));
    raw.send(Buffer.from([0xc1, 0xff, 0x00])); // 0xc1 is never valid msgpack
    raw.send(pack([1, 2, 3]));
    raw.send(pack({ id: 5, token: TOKEN, op: 'set', key: 'k' })); // no value
    raw.send(pack({ id: 6, token: TOKEN, op: 'explode', key: 'k' }));
    raw.send(pack({ id: 7, token: TOKEN, op: 'add', key: 'k', delta: 0.5 }));
    await until(() => raw.replies.length === 5, 2000, '5 replies');
    assert.deepEqual(
      raw.replies.map((r) => [r.id, r.ok]),
      [
        [1, true],
        [-1, false],
        [5, false],
        [6, false],
        [7, false],
      ],
    );
    assert.match(raw.replies[1]!.error!, /request is not a map/);
    assert.match(raw.replies[2]!.error!, /field "value" must be bytes/);
    assert.match(raw.replies[3]!.error!, /unknown op "explode"/);
    // Oversized: the connection that sent it is dropped, nothing else.
    raw.send(Buffer.alloc(64 * 1024, 1));
    await raw.closed;
    const good = await StoreClient.connect({
      host: '127.0.0.1',
      port: server.port,
      token: TOKEN,
      timeoutMs: 1000,
    });
    await good.set('still', 'alive');
    assert.equal(text(await good.get('still')), 'alive');
    // Too big for this store: its connection is dropped and the call, lost with it, times out...
    await assert.rejects(good.set('big', Buffer.alloc(8192)), /timed out/);
    // ...and the next call opens a new connection.
    await good.set('after', 'x');
    assert.equal(text(await good.get('after')), 'x');
    await assert.rejects(good.set('huge', Buffer.alloc(17 * 1024 * 1024)), /exceeds the 16777216-byte limit/);
    await good.close();
    assert.ok(rejects.some((r) => r.includes('undecodable')));
    assert.ok(
      rejects.some((r) => /dropped the connection .*frame header of \d+ bytes \(limit 4096\)/.test(r)),
    );
  } finally {
    raw.sock.destroy();
    await server.close();
  }
});

test('a connection without the run token is dropped after authTimeoutMs; an authenticated idle one stays', async () => {
  const authTimeoutMs = 200;
  const rejects: string[] = [];
  const server = await StoreServer.listen({
    host: '127.0.0.1',
    port: 0,
    token: TOKEN,
    authTimeoutMs,
    onReject: (r) => rejects.push(r),
  });
  const good = await StoreClient.connect({
    host: '127.0.0.1',
    port: server.port,
    token: TOKEN,
    timeoutMs: 20 * authTimeoutMs,
  });
  try {
    const start = Date.now();
    const idle = await rawConnection(server.port);
    // A stranger that talks, but without the token, is answered and closed at once.
    const wrong = await rawConnection(server.port);
    wrong.send(pack({ id: 3, token: 'guess', op: 'get', key: 'k', waitMs: 0 }));
    const wrongAt = await wrong.closed;
    assert.deepEqual(
      wrong.replies.map((r) => [r.id, r.ok, r.error]),
      [[3, false, 'rejected: wrong run token']],
    );
    assert.ok(wrongAt - start < authTimeoutMs, 'a wrong token does not wait for the timeout');
    // Before the token, only small frames: a big one is dropped at once too.
    const big = await rawConnection(server.port);
    big.send(Buffer.alloc(128 * 1024, 0x90));
    await big.closed;
    const idleAt = await idle.closed;
    assert.ok(
      idleAt - start >= authTimeoutMs - 20,
      `dropped after ${idleAt - start} ms, not before the timeout`,
    );
    assert.ok(idleAt - start < 10 * authTimeoutMs, `dropped after ${idleAt - start} ms`);
    assert.ok(rejects.some((r) => r.includes(`no request with the run token within ${authTimeoutMs} ms`)));
    // The member has been idle longer than the timeout and is still served on its connection.
    assert.deepEqual(server.connections, { open: 1, unauthenticated: 0 });
    await good.set('k', 'v');
    assert.equal(text(await good.get('k')), 'v');
    assert.deepEqual(server.connections, { open: 1, unauthenticated: 0 });
  } finally {
    await good.close();
    await server.close();
  }
});

test('at most maxUnauthenticated connections wait to authenticate: one more evicts the oldest', async () => {
  const max = 4;
  const rejects: string[] = [];
  const server = await StoreServer.listen({
    host: '127.0.0.1',
    port: 0,
    token: TOKEN,
    maxUnauthenticated: max,
    authTimeoutMs: 60_000,
    onReject: (r) => rejects.push(r),
  });
  const raws: Awaited<ReturnType<typeof rawConnection>>[] = [];
  try {
    for (let i = 0; i < max; i++) {
      raws.push(await rawConnection(server.port));
      await until(() => server.connections.unauthenticated === i + 1, 2000, `connection ${i + 1} accepted`);
    }
    const evicted: number[] = [];
    raws.forEach((r, i) => void r.closed.then(() => evicted.push(i)));
    raws.push(await rawConnection(server.port));
    await raws[0]!.closed;
    await until(() => server.connections.unauthenticated === max, 2000, 'the cap');
    assert.deepEqual(evicted, [0], 'only the oldest went');
    assert.ok(rejects.some((r) => r.includes(`more than ${max} connections waiting to authenticate`)));
    // A member still gets in (evicting the next oldest stranger), and then counts as authenticated.
    const good = await StoreClient.connect({
      host: '127.0.0.1',
      port: server.port,
      token: TOKEN,
      timeoutMs: 5000,
    });
    await good.set('k', 'v');
    await raws[1]!.closed;
    assert.deepEqual(evicted, [0, 1]);
    assert.deepEqual(server.connections, { open: max, unauthenticated: max - 1 });
    await good.close();
  } finally {
    for (const r of raws) r.sock.destroy();
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
