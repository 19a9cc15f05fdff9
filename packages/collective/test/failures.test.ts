import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Dealer } from 'zeromq';
import { initProcessGroup, StoreServer, type ProcessGroup } from '../src/index.js';
import { SOURCE_EXEC_ARGV } from '../../../scripts/source-argv.mjs';
import { TOKEN, withGroups } from './helpers/groups.js';

const settle = <T>(p: Promise<T>) =>
  p.then(
    (v) => ({ ok: true as const, v }),
    (e: Error) => ({ ok: false as const, e }),
  );

test('a rank that never calls the collective is named, with op and sequence number, on every other rank', async () => {
  const timeoutMs = 1500;
  await withGroups(
    4,
    async (groups) => {
      const t0 = Date.now();
      const results = await Promise.all(
        groups.map((g) =>
          g.rank === 2 ? null : settle(g.allReduce(new Float32Array(50000), { op: 'sum' })),
        ),
      );
      for (const [r, res] of results.entries()) {
        if (r === 2) continue;
        assert.ok(res && !res.ok, `rank ${r} should fail`);
        assert.match(res.e.message, /allReduce seq 2 of 50000 × f32/, `rank ${r}: ${res.e.message}`);
        assert.match(res.e.message, /rank 2 has not called collective seq 2/, `rank ${r}: ${res.e.message}`);
        assert.equal((res.e as { silentRank?: number }).silentRank, 2);
      }
      const elapsed = Date.now() - t0;
      // The timeout, then one round of diagnosis (asking each peer what it is waiting on).
      assert.ok(
        elapsed < 3 * timeoutMs,
        `failed after ${elapsed} ms, more than 3× the ${timeoutMs} ms timeout`,
      );
      // The group is broken from now on: later calls fail at once, naming the first failure.
      await assert.rejects(groups[0]!.barrier(), /not started: the group failed earlier/);
    },
    { timeoutMs },
  );
});

test('ranks that call different sizes, dtypes or collectives fail loudly on both sides', async () => {
  const cases: [string, (g: ProcessGroup) => Promise<unknown>][] = [
    ['size', (g) => g.allReduce(new Float32Array(g.rank === 0 ? 100 : 200))],
    ['large size', (g) => g.allReduce(new Float32Array(g.rank === 0 ? 100000 : 100001))],
    ['wire', (g) => g.allReduce(new Float32Array(100), { wire: g.rank === 0 ? 'f32' : 'f16' })],
    ['op', (g) => g.allReduce(new Float32Array(100), { op: g.rank === 0 ? 'sum' : 'max' })],
    [
      'collective',
      (g) => (g.rank === 0 ? g.allReduce(new Float32Array(100)) : g.broadcast(new Float32Array(100), 0)),
    ],
  ];
  for (const [what, call] of cases) {
    await withGroups(
      2,
      async (groups) => {
        const results = await Promise.all(groups.map((g) => settle(call(g))));
        for (const [r, res] of results.entries()) {
          assert.ok(!res.ok, `${what}: rank ${r} must fail`);
          assert.match(
            res.e.message,
            /collective mismatch: rank \d called .* while this rank \(\d\) called/,
            `${what}: ${res.e.message}`,
          );
        }
      },
      { timeoutMs: 3000 },
    );
  }
  // With three ranks, the one in the middle of the ring (not receiving from the odd one) fails too.
  await withGroups(
    3,
    async (groups) => {
      const results = await Promise.all(
        groups.map((g) => settle(g.allReduce(new Float32Array(g.rank === 1 ? 7 : 9000)))),
      );
      for (const [r, res] of results.entries()) assert.ok(!res.ok, `rank ${r} must fail`);
    },
    { timeoutMs: 3000, smallBytes: 0 },
  );
});

test('a stranger without the run token can neither join nor inject into the ring', async () => {
  const store = await StoreServer.listen({ host: '127.0.0.1', port: 0, token: TOKEN });
  try {
    await assert.rejects(
      initProcessGroup({
        rank: 0,
        worldSize: 2,
        runId: 'x',
        store: { host: '127.0.0.1', port: store.port, token: 'wrong' },
        timeoutMs: 2000,
      }),
      /rejected: wrong run token/,
    );
  } finally {
    await store.close();
  }
  for (const engine of ['net', 'zmq'] as const) {
    const drops: string[] = [];
    await withGroups(
      2,
      async (groups) => {
        // The stranger knows a ring endpoint but not the members' secret ids (those are in the token-protected store).
        const endpoint = groups[1]!.peerEndpoints[0]!;
        const header = Buffer.alloc(24);
        header[0] = 1;
        header[1] = 1;
        if (engine === 'zmq') {
          const stranger = new Dealer({ linger: 0, routingId: 'rank0?' });
          stranger.connect(endpoint);
          for (let i = 0; i < 20; i++) await stranger.send([header, Buffer.alloc(4000, 0xff)]);
          await stranger.send([Buffer.from([0xc0, 0x81]), Buffer.alloc(3)]);
          await new Promise((r) => setTimeout(r, 100));
          stranger.close();
        } else {
          const frame = (h: Buffer, p = Buffer.alloc(0)) => {
            const pre = Buffer.alloc(8);
            pre.writeUInt32LE(h.length, 0);
            pre.writeUInt32LE(p.length, 4);
            return Buffer.concat([pre, h, p]);
          };
          const target = endpoint.startsWith('ipc://')
            ? { path: endpoint.slice(6) }
            : { host: '127.0.0.1', port: Number(endpoint.split(':').pop()) };
          const attempts = [
            frame(Buffer.concat([Buffer.from([0xc1]), Buffer.from('guessed-id')])), // a hello with a wrong id
            Buffer.concat([frame(header, Buffer.alloc(4000, 0xff))]), // data without a hello
            Buffer.from('GET / HTTP/1.1\r\n\r\n'), // garbage
          ];
          for (const bytes of attempts) {
            const sock = createConnection(target);
            await new Promise<void>((resolve) => {
              sock.on('error', () => resolve());
              sock.on('close', () => resolve());
              sock.on('connect', () =>
                sock.write(Buffer.concat([bytes, frame(header, Buffer.alloc(4000, 0xff))])),
              );
            });
          }
        }
        const bufs = groups.map(() => new Float32Array(1000).fill(2));
        await Promise.all(groups.map((g, r) => g.allReduce(bufs[r]!, { op: 'sum' })));
        for (const b of bufs) assert.ok(b.every((v) => v === 4));
        if (engine === 'zmq')
          assert.ok(
            drops.some((d) => d.includes('unknown sender')),
            drops.join('; '),
          );
        else {
          assert.ok(
            drops.some((d) => d.includes('unknown sender')),
            drops.join('; '),
          );
          assert.ok(
            drops.some((d) => d.includes('did not say hello')),
            drops.join('; '),
          );
          assert.ok(
            drops.some((d) => d.includes('malformed stream')),
            drops.join('; '),
          );
        }
      },
      // ipc: the endpoint string names the socket a stranger would attack (shm rides on the same socket)
      { onDrop: (d) => drops.push(d), timeoutMs: 3000, engine, transport: 'ipc' },
    );
  }
});

/** The collective timeout of the spawned ranks: long, so that only death detection can end a test early. */
const peerTimeoutMs = 60_000;

function spawnRank(
  rank: number,
  n: number,
  port: number,
  runId: string,
  extraEnv: Record<string, string> = {},
): ChildProcess {
  const script = fileURLToPath(new URL('./fixtures/ringWorker.ts', import.meta.url));
  return spawn(process.execPath, [...SOURCE_EXEC_ARGV, script], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: {
      ...process.env,
      RANK: String(rank),
      WORLD_SIZE: String(n),
      MASTER_ADDR: '127.0.0.1',
      MASTER_PORT: String(port),
      MTL_RUN_ID: runId,
      MTL_RUN_TOKEN: TOKEN,
      MTL_PG_TIMEOUT_MS: String(peerTimeoutMs),
      ...extraEnv,
    },
  });
}

for (const transport of ['shm', 'ipc'] as const) {
  test(
    `a killed peer makes every survivor fail fast, naming it (${transport})`,
    { timeout: 60_000 },
    async () => {
      const dir = mkdtempSync(join('/dev/shm', 'mtl-test-'));
      const store = await StoreServer.listen({ host: '127.0.0.1', port: 0, token: TOKEN });
      const n = 4;
      const procs = Array.from({ length: n }, (_, r) =>
        spawnRank(r, n, store.port, `kill-${transport}-${process.pid}`, {
          MTL_PG_TRANSPORT: transport,
          MTL_PG_SHM_DIR: dir,
          // 64 KiB segments and 2 slots: sends sit in the queue waiting for credits when the peer dies.
          MTL_PG_SEGMENT_BYTES: '65536',
          MTL_PG_SHM_SLOTS: '2',
        }),
      );
      try {
        const out = procs.map(() => '');
        const ready = procs.map(
          (p, r) =>
            new Promise<void>((resolve, reject) => {
              p.stdout!.on('data', (d: Buffer) => {
                out[r] += d.toString();
                if (out[r]!.includes('ready')) resolve();
              });
              p.once('exit', (code) =>
                reject(new Error(`rank ${r} exited with ${code} before it was ready: ${out[r]}`)),
              );
            }),
        );
        await Promise.all(ready);
        const exits = procs.map(
          (p) => new Promise<number | null>((resolve) => p.once('exit', (code) => resolve(code))),
        );
        const t0 = Date.now();
        procs[1]!.kill('SIGKILL');
        const codes = await Promise.all(exits);
        const elapsed = Date.now() - t0;
        for (const r of [0, 2, 3]) {
          assert.equal(codes[r], 3, `rank ${r} exits through its error path`);
          assert.match(
            out[r]!,
            /FAIL allReduce seq \d+ .*failed on rank \d: .*rank 1 (connection lost|disconnected)/,
            `rank ${r}: ${out[r]}`,
          );
        }
        // Death is detected from the lost connection, not by waiting out the timeout.
        assert.ok(
          elapsed < peerTimeoutMs / 6,
          `survivors failed after ${elapsed} ms, not far below the ${peerTimeoutMs} ms timeout`,
        );
        assert.deepEqual(readdirSync(dir), [], 'no shared-memory file outlives the killed group');
      } finally {
        for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
}

test('ring transport: shared memory between same-host peers by default, ipc or tcp when asked', async () => {
  await withGroups(2, async (groups) => {
    assert.match(groups[0]!.peerEndpoints[1]!, /^shm:\/\/\/dev\/shm\/mtl-/);
    assert.equal(groups[0]!.peerEndpoints[0], 'self');
  });
  await withGroups(
    2,
    async (groups) => {
      assert.match(groups[0]!.peerEndpoints[1]!, /^ipc:\/\//);
      const bufs = groups.map((g) => new Float32Array(100000).fill(g.rank));
      await Promise.all(groups.map((g, r) => g.allReduce(bufs[r]!)));
      assert.ok(bufs[0]!.every((v) => v === 1));
    },
    { transport: 'ipc' },
  );
  await withGroups(
    2,
    async (groups) => {
      assert.match(groups[0]!.peerEndpoints[1]!, /^tcp:\/\/127\.0\.0\.1:\d+$/);
      const bufs = groups.map((g) => new Float32Array(100000).fill(g.rank));
      await Promise.all(groups.map((g, r) => g.allReduce(bufs[r]!)));
      assert.ok(bufs[1]!.every((v) => v === 1));
    },
    { transport: 'tcp' },
  );
});

/** Runs `fn` while a root-only loopback capture counts TCP payloads holding `marker`. */
async function sniffLoopback(
  marker: Uint8Array,
  fn: () => Promise<void>,
): Promise<{ packets: number; hits: number }> {
  const script = fileURLToPath(new URL('./fixtures/sniff_lo.py', import.meta.url));
  const p = spawn('/usr/bin/python3', [script, Buffer.from(marker).toString('hex'), '4'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => p.once('exit', r));
  await Promise.race([
    new Promise<void>((resolve) => p.stdout!.on('data', () => out.includes('ready') && resolve())),
    exited.then((code) => assert.fail(`loopback capture failed (${code}): ${err}`)),
  ]);
  await fn();
  assert.equal(await exited, 0, err);
  const m = /packets=(\d+) bytes=\d+ hits=(\d+)/.exec(out);
  assert.ok(m, `no capture summary: ${out}`);
  return { packets: Number(m[1]), hits: Number(m[2]) };
}

test('CURVE-encrypted ring gives the same results, and no payload crosses the wire in plaintext', async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('capturing loopback traffic (AF_PACKET) needs root');
    return;
  }
  // Every element is the float whose little-endian bytes spell "MTLf": easy to find in a capture.
  const marker = new Uint8Array([0x4d, 0x54, 0x4c, 0x66]);
  const value = new DataView(marker.buffer).getFloat32(0, true);
  const ring = (curve: boolean) =>
    withGroups(
      3,
      async (groups) => {
        const bufs = groups.map(() => new Float32Array(100000).fill(value));
        for (let i = 0; i < 3; i++)
          await Promise.all(groups.map((g, r) => g.allReduce(bufs[r]!, { op: 'max' })));
        for (const b of bufs) assert.ok(b.every((v) => v === value));
      },
      { engine: 'zmq', transport: 'tcp', ...(curve ? { curve: true } : {}) },
    );
  // The control shows that the capture sees ring payloads at all.
  const plain = await sniffLoopback(marker, () => ring(false));
  assert.ok(plain.hits > 0, `the capture saw no plaintext payload without CURVE (${plain.packets} packets)`);
  const encrypted = await sniffLoopback(marker, () => ring(true));
  assert.ok(encrypted.packets > 0, 'the capture saw the encrypted traffic');
  assert.equal(
    encrypted.hits,
    0,
    `${encrypted.hits} of ${encrypted.packets} CURVE packets hold the plaintext`,
  );
});

test('the environment is validated with messages naming the variable', async () => {
  const { optionsFromEnv } = await import('../src/index.js');
  assert.throws(() => optionsFromEnv({}), /RANK is not set/);
  assert.throws(
    () => optionsFromEnv({ RANK: 'x', WORLD_SIZE: '2' }),
    /RANK="x" is not a non-negative integer/,
  );
  const o = optionsFromEnv({
    RANK: '1',
    WORLD_SIZE: '2',
    MASTER_ADDR: 'h',
    MASTER_PORT: '5',
    MTL_RUN_ID: 'r',
    MTL_RUN_TOKEN: 't',
    MTL_RESTART_COUNT: '3',
  });
  assert.deepEqual(
    [o.rank, o.worldSize, o.runId, o.restartCount, o.store],
    [1, 2, 'r', 3, { host: 'h', port: 5, token: 't' }],
  );
});
