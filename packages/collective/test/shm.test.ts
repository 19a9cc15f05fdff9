import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { nativeAddon, nativeAddonMissing } from '../src/native/addon.js';
import { SOURCE_EXEC_ARGV } from '../../../scripts/source-argv.mjs';
import { withGroups } from './helpers/groups.js';

/** A private directory on tmpfs, so the test can see every ring file this run creates. */
function shmDir(): string {
  return mkdtempSync(join('/dev/shm', 'mtl-test-'));
}

for (const mmap of [true, false]) {
  test(`same-host peers use shared memory; ring files are unlinked once both sides hold them (${mmap ? 'mapped' : 'pread/pwrite'})`, async () => {
    if (mmap) assert.ok(nativeAddon(), `mapped rings need the native addon: ${nativeAddonMissing()}`);
    const dir = shmDir();
    try {
      await withGroups(
        3,
        async (groups) => {
          for (const g of groups)
            for (let p = 0; p < 3; p++)
              if (p !== g.rank) assert.match(g.peerEndpoints[p]!, /^shm:\/\/.*\/mtl-[0-9a-f]{24}\.shm$/);
          assert.deepEqual(readdirSync(dir), [], 'no ring file is left on disk after the handshake');
          // 2 slots of 4 KiB per pair and 1 MiB per rank: far more segments in flight than slots.
          for (const wire of ['f32', 'f16', 'bf16'] as const) {
            const bufs = groups.map((g) =>
              Float32Array.from({ length: 262_147 }, (_, i) => (i % 61) - g.rank),
            );
            await Promise.all(groups.map((g, r) => g.allReduce(bufs[r]!, { op: 'sum', wire })));
            for (const [r, b] of bufs.entries())
              for (let i = 0; i < b.length; i++)
                if (b[i] !== 3 * (i % 61) - 3) assert.fail(`${wire} rank ${r}[${i}] = ${b[i]}`);
          }
          const big = groups.map((g) => new Float32Array(100_003).fill(g.rank === 1 ? 7 : 0));
          await Promise.all(groups.map((g, r) => g.broadcast(big[r]!, 1)));
          for (const b of big) assert.ok(b.every((v) => v === 7));
        },
        { transport: 'shm', segmentBytes: 4096, shm: { dir, slots: 2, mmap } },
      );
      assert.deepEqual(readdirSync(dir), [], 'nothing left after close');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

for (const mmap of [true, false]) {
  test(`a ring that cannot be reserved (a full tmpfs) falls back to the socket for that peer, losing nothing (${mmap ? 'mapped' : 'pread/pwrite'})`, async () => {
    // A file-size limit below the ring's 8 MiB makes fallocate / ftruncate fail with EFBIG, as a
    // full /dev/shm fails with ENOSPC; SIGXFSZ is ignored so the failure is an error, not a kill.
    const dir = shmDir();
    try {
      const fixture = fileURLToPath(new URL('./fixtures/shmFullWorker.ts', import.meta.url));
      const node = [process.execPath, ...SOURCE_EXEC_ARGV, fixture].map((a) => `'${a}'`).join(' ');
      const r = spawnSync('bash', ['-c', `trap '' XFSZ; ulimit -f 2048; exec ${node}`], {
        encoding: 'utf8',
        env: { ...process.env, SHM_DIR: dir, MTL_PG_NATIVE: mmap ? '1' : '0' },
        timeout: 60_000,
      });
      assert.equal(r.status, 0, r.stderr);
      const { ok, lines } = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
        ok: boolean;
        lines: string[];
      };
      assert.ok(ok, 'every rank got the right sums on both wires');
      assert.equal(lines.length, 2, `one line per rank: ${lines.join(' | ')}`);
      for (const l of lines)
        assert.match(
          l,
          /shared memory \/dev\/shm\/mtl-test-.*\.shm: cannot write it \(.*(File too large|EFBIG).*\); using the socket for this peer/,
        );
      assert.deepEqual(readdirSync(dir), [], 'the abandoned ring files are removed');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('an unusable shm directory falls back to unix sockets with one log line ("shm" insists)', async () => {
  const lines: string[] = [];
  const missing = '/nonexistent/mtl-shm';
  await withGroups(
    2,
    async (groups) => {
      assert.match(groups[0]!.peerEndpoints[1]!, /^ipc:\/\//);
      const bufs = groups.map((g) => new Float32Array(300_000).fill(g.rank + 1));
      await Promise.all(groups.map((g, r) => g.allReduce(bufs[r]!, { op: 'mean' })));
      for (const b of bufs) assert.ok(b.every((v) => v === 1.5));
    },
    { shm: { dir: missing }, log: (l) => lines.push(l) },
  );
  assert.equal(lines.length, 2, `one line per rank: ${lines.join(' | ')}`);
  for (const l of lines)
    assert.match(
      l,
      /shared memory unavailable \(\/nonexistent\/mtl-shm: .*ENOENT.*\); same-host peers use unix sockets/,
    );
  await assert.rejects(
    withGroups(2, async () => undefined, { transport: 'shm', shm: { dir: missing }, timeoutMs: 2000 }),
    /transport 'shm' requested but \/nonexistent\/mtl-shm is unusable/,
  );
});

test('ring files that a rank killed during the handshake left behind are swept at the next start, nothing else', async () => {
  const dir = shmDir();
  try {
    const old = (Date.now() - 11 * 60_000) / 1000;
    const name = (c: string) => `mtl-${c.repeat(24)}.shm`;
    const files = {
      leftover: name('a'), // empty and old: never opened by a receiver
      fresh: name('b'), // empty but new: a handshake may be under way
      sized: name('c'), // old but sized: not a handshake leftover
      stranger: 'mtl-not-a-ring.shm',
    };
    for (const f of Object.values(files)) writeFileSync(join(dir, f), f === files.sized ? 'x' : '');
    for (const f of [files.leftover, files.sized, files.stranger]) utimesSync(join(dir, f), old, old);
    await withGroups(2, async () => undefined, { transport: 'shm', shm: { dir } });
    assert.deepEqual(readdirSync(dir).sort(), [files.fresh, files.sized, files.stranger].sort());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("mapped rings of closed groups are unmapped once collected: nothing keeps a closed group's rings alive", async () => {
  assert.ok(nativeAddon(), `needs the native addon: ${nativeAddonMissing()}`);
  const dir = shmDir();
  const mapped = () =>
    readFileSync('/proc/self/maps', 'utf8')
      .split('\n')
      .filter((l) => l.includes(dir)).length;
  try {
    let most = 0;
    // Each group maps 4 rings of 8 MiB (both ends of both directions): 40 groups would hold 1.25 GiB.
    for (let i = 0; i < 40; i++) {
      await withGroups(
        2,
        async (groups) => {
          const bufs = groups.map(() => new Float32Array(1 << 20).fill(1));
          await Promise.all(groups.map((g, r) => g.allReduce(bufs[r]!)));
          assert.equal(bufs[0]![0], 2);
          most = Math.max(most, mapped());
        },
        { transport: 'shm', shm: { dir } },
      );
    }
    assert.ok(most >= 4, `the rings were mapped (${most} mappings seen)`);
    // Collect for real rather than hope the collector ran: the runner starts tests with --expose-gc.
    assert.equal(typeof global.gc, 'function', 'run under scripts/test.mjs (node --expose-gc)');
    for (let i = 0; i < 3; i++) {
      global.gc!();
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(
      mapped(),
      0,
      `${mapped()} mappings still there after 40 closed groups (160 made) and a full GC`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
