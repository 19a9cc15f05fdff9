import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LaunchError } from '../src/errors.js';
import { bindAddress, connectStore, hostStore } from '../src/store-host.js';

describe('store hosting', () => {
  it('binds an IP for a host name and keeps IPs as they are', async () => {
    assert.equal(await bindAddress('10.1.2.3'), '10.1.2.3');
    assert.equal(await bindAddress('localhost'), '127.0.0.1');
    await assert.rejects(
      bindAddress('no-such-host.invalid'),
      (e) => e instanceof LaunchError && /cannot resolve/.test(e.message),
    );
  });

  it('looks a name that does not resolve up again until the wait is over, then fails in one line', async () => {
    const misses: string[] = [];
    const started = Date.now();
    await assert.rejects(
      bindAddress('no-such-host.invalid', 1500, (why) => misses.push(why)),
      (e) =>
        e instanceof LaunchError &&
        /--master-addr no-such-host\.invalid: cannot resolve it within 2s/.test(e.message),
    );
    assert.ok(Date.now() - started >= 1000, `gave up after ${Date.now() - started} ms`);
    assert.equal(misses.length, 1, 'the wait is announced once');
  });

  it('hosts on a host name, refuses a busy port, and a wrong token in one line', async () => {
    const server = await hostStore('localhost', 0, 'good');
    try {
      await assert.rejects(
        hostStore('127.0.0.1', server.port, 'good'),
        (e) => e instanceof LaunchError && /127\.0\.0\.1:\d+: the port is already in use/.test(e.message),
      );
      const opts = { host: '127.0.0.1', port: server.port, name: 't', callTimeoutMs: 2000, waitMs: 2000 };
      await assert.rejects(
        connectStore({ ...opts, token: 'bad', tokenDerived: true }),
        (e) => e instanceof LaunchError && /rejected this node's run token .*same --run-id/.test(e.message),
      );
      const client = await connectStore({ ...opts, token: 'good', tokenDerived: false });
      await client.set('k', 'v');
      await client.close();
    } finally {
      await server.close();
    }
  });

  it('gives up reaching an absent store after the wait', async () => {
    const started = Date.now();
    await assert.rejects(
      connectStore({
        host: '127.0.0.1',
        port: 9,
        token: 't',
        name: 't',
        callTimeoutMs: 300,
        waitMs: 900,
        tokenDerived: false,
      }),
      (e) =>
        e instanceof LaunchError &&
        /cannot reach the rendezvous store at 127\.0\.0\.1:9 within 1s/.test(e.message),
    );
    assert.ok(Date.now() - started >= 800);
  });
});
