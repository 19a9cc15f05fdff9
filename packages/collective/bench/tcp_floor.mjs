/**
 * The floor under a 2-rank all-reduce over TCP: two processes swap `bytes` each way per iteration,
 * as a 2-rank ring does (a chunk of bytes/2 in the reduce-scatter, the other in the all-gather), in
 * 1 MiB writes from a `bytes/2` buffer, the kernel reading straight into another one (Node's
 * `onread`), so memory traffic is a ring's, with no reduction and no user-space copy. Nothing can
 * do that all-reduce faster over these sockets on this machine. (Until 2026-12-06 it swapped only
 * bytes/2 each way, half a ring's traffic, and so reported twice the real floor's busbw.)
 *
 *   node packages/collective/bench/tcp_floor.mjs [--bytes 67108864] [--iters 10] [--host 127.0.0.1]
 *
 * Prints one JSON line: median/min wall ms per iteration of the slower rank, CPU ms per
 * iteration (mean of the two ranks), and the busbw a ring would have at that time.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

const argv = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : fallback;
};
const BYTES = Number(arg('--bytes', String(64 << 20)));
const ITERS = Number(arg('--iters', '10'));
const HOST = arg('--host', '127.0.0.1');
const SEG = 1 << 20;

if (argv.includes('--rank')) await rank();
else await driver();

async function driver() {
  const self = fileURLToPath(import.meta.url);
  const kids = [0, 1].map((r) =>
    spawn(
      process.execPath,
      [self, '--rank', String(r), '--bytes', String(BYTES), '--iters', String(ITERS), '--host', HOST],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    ),
  );
  const lines = kids.map(
    (k) =>
      new Promise((res) => {
        let out = '';
        k.stdout.on('data', (d) => {
          out += d;
        });
        k.on('exit', () => res(out.trim().split('\n')));
      }),
  );
  // Tell each rank the other's port once both listen.
  const ports = await Promise.all(
    kids.map((k) => new Promise((res) => k.stdout.once('data', (d) => res(String(d).split('\n')[0])))),
  );
  kids[0].stdin.end(ports[1] + '\n');
  kids[1].stdin.end(ports[0] + '\n');
  const results = (await Promise.all(lines)).map((l) => JSON.parse(l[l.length - 1]));
  const times = results[0].times.map((t, i) => Math.max(t, results[1].times[i]));
  times.sort((a, b) => a - b);
  const med = times[times.length >> 1];
  console.log(
    JSON.stringify({
      bytes: BYTES,
      host: HOST,
      median_ms: +med.toFixed(3),
      min_ms: +times[0].toFixed(3),
      cpu_ms: +((results[0].cpu + results[1].cpu) / 2).toFixed(3),
      ring_busbw_gbps: +(BYTES / med / 1e6).toFixed(3),
    }),
  );
}

async function rank() {
  const half = BYTES / 2;
  const payload = Buffer.alloc(half, 1);
  const rbuf = Buffer.alloc(half);
  let roff = 0;
  const server = net.createServer({ noDelay: true });
  await new Promise((r) => server.listen(0, HOST, r));
  // Listen for the peer's connection before it can know our port.
  const outgoing = new Promise((res) =>
    server.once('connection', (s) => {
      s.setNoDelay(true);
      res(s);
    }),
  );
  process.stdout.write(`${server.address().port}\n`);
  const peerPort = await new Promise((res) => {
    let text = '';
    process.stdin.on('data', (d) => {
      text += d;
    });
    process.stdin.on('end', () => res(Number(text.trim())));
  });
  // The receiving end is the connecting socket: net.Socket takes `onread` directly.
  let got = 0;
  let want = 0;
  let onDone = null;
  const sock = net.connect({
    host: HOST,
    port: peerPort,
    onread: {
      buffer: () => rbuf.subarray(roff, Math.min(roff + SEG, half)),
      callback: (n) => {
        got += n;
        roff = (roff + n) % half;
        if (got >= want && onDone) {
          const d = onDone;
          onDone = null;
          d();
        }
      },
    },
  });
  sock.setNoDelay(true);
  await new Promise((r) => sock.once('connect', r));
  const out = await outgoing;
  const send = async () => {
    for (let off = 0; off < half; off += SEG)
      if (!out.write(payload.subarray(off, Math.min(off + SEG, half))))
        await new Promise((r) => out.once('drain', r));
  };
  const times = [];
  let cpu = 0;
  for (let i = -2; i < ITERS; i++) {
    want += 2 * half; // the reduce-scatter's chunk and the all-gather's
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    const received =
      got >= want
        ? Promise.resolve()
        : new Promise((r) => {
            onDone = r;
          });
    await Promise.all([send().then(send), received]);
    const c = process.cpuUsage(c0);
    if (i >= 0) {
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      cpu += (c.user + c.system) / 1e3;
    }
  }
  console.log(JSON.stringify({ times, cpu: cpu / ITERS }));
  sock.destroy();
  out.destroy();
  server.close();
}
