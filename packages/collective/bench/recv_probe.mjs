/**
 * Where does the time go when a payload is reduced right after the kernel wrote it? One sender
 * streams 1 MiB frames over loopback TCP; the receiver parses them either from Node's 64 KiB
 * chunks ('data', copying each payload together) or by reading straight into the payload
 * ('onread', as NetTransport does), and reduces each into a 32 MiB accumulator with the native
 * kernel. 'probe' modes then time, per frame, a memcpy of the payload and two more reductions
 * (of the copy and of the payload itself) into cold accumulators, and print quartiles (µs).
 *
 *   bash packages/collective/bench/recv_probe.sh onread-pool-probe 256 [same|split]
 *
 * Modes: data | data-pool | onread | onread-pool, with -noreduce / -probe / -probe-swap.
 */
import net from 'node:net';
import { createRequire } from 'node:module';
const addon = createRequire(import.meta.url)('../build/Release/mtl_collective.node');
addon.setVector(true);
const [, , role, mode, portArg, totalMiBArg, segKiBArg] = process.argv;
const SEG = Number(segKiBArg ?? 1024) * 1024;
const TOTAL = Number(totalMiBArg ?? 512) * 1024 * 1024;
const FRAMES = TOTAL / SEG;
const HDR = 24;
if (role === 'send') {
  const payload = Buffer.alloc(SEG);
  for (let i = 0; i < SEG / 4; i++) payload.writeFloatLE(Math.random(), i * 4);
  const s = net.createConnection({ host: '127.0.0.1', port: Number(portArg) }, async () => {
    s.setNoDelay(true);
    for (let f = 0; f < FRAMES; f++) {
      const pre = Buffer.alloc(8 + HDR);
      pre.writeUInt32LE(HDR, 0);
      pre.writeUInt32LE(SEG, 4);
      s.cork();
      s.write(pre);
      const ok = s.write(payload);
      s.uncork();
      if (!ok) await new Promise((r) => s.once('drain', r));
    }
    s.end();
  });
} else {
  const N = (32 << 20) / 4;
  const acc = new Float32Array(N).fill(1),
    acc2 = new Float32Array(N).fill(1),
    acc3 = new Float32Array(N).fill(1);
  const copyBuf = Buffer.allocUnsafeSlow(SEG);
  copyBuf.fill(0);
  const T = { r: [], kfilled: [], copied: [], cp: [] };
  let accOff = 0,
    reduceNs = 0n,
    frames = 0;
  const now = () => process.hrtime.bigint();
  const reduce = (p) => {
    const src = new Float32Array(p.buffer, p.byteOffset, p.byteLength / 4);
    const n = src.length;
    if (accOff + n > N) accOff = 0;
    const t0 = now();
    if (!mode.includes('noreduce')) addon.reduceF32(acc.subarray(accOff, accOff + n), src, false, 1);
    const t1 = now();
    reduceNs += t1 - t0;
    T.r.push(Number(t1 - t0));
    if (mode.includes('probe')) {
      // src is hot now (just reduced). Copy it; then reduce the copy and src itself, each into a cold acc.
      copyBuf.set(p);
      const t2 = now();
      T.cp.push(Number(t2 - t1));
      const cp = new Float32Array(copyBuf.buffer, copyBuf.byteOffset, n);
      const a = () => addon.reduceF32(acc2.subarray(accOff, accOff + n), cp, false, 1);
      const b = () => addon.reduceF32(acc3.subarray(accOff, accOff + n), src, false, 1);
      const swap = mode.includes('swap');
      const u0 = now();
      (swap ? b : a)();
      const u1 = now();
      (swap ? a : b)();
      const u2 = now();
      T.copied.push(Number(swap ? u2 - u1 : u1 - u0));
      T.kfilled.push(Number(swap ? u1 - u0 : u2 - u1));
    }
    accOff += n;
    frames++;
  };
  const server = net.createServer({ pauseOnConnect: !mode.startsWith('data') });
  server.listen(0, '127.0.0.1', () => console.log(server.address().port));
  const pool = Array.from({ length: 4 }, () => Buffer.allocUnsafeSlow(SEG).fill(0));
  let pi = 0;
  const take = (need) => (mode.includes('pool') ? pool[pi++ % pool.length] : Buffer.allocUnsafeSlow(need));
  const hdrBuf = Buffer.allocUnsafe(8 + HDR);
  server.on('connection', (sock) => {
    const t0 = now(),
      cpu0 = process.cpuUsage(),
      ru0 = process.resourceUsage();
    let finished = false;
    const done = () => {
      if (finished) return;
      finished = true;
      const wall = Number(now() - t0) / 1e6,
        c = process.cpuUsage(cpu0),
        ru = process.resourceUsage();
      const q = (a) => {
        if (!a.length) return '-';
        const s = [...a].sort((x, y) => x - y);
        return [s[s.length >> 2], s[s.length >> 1], s[(3 * s.length) >> 2]]
          .map((v) => (v / 1e3).toFixed(0))
          .join('/');
      };
      console.log(
        JSON.stringify({
          mode,
          frames,
          wall_ms: +wall.toFixed(1),
          GBps: +(TOTAL / wall / 1e6).toFixed(2),
          cpu_ms: +((c.user + c.system) / 1e3).toFixed(1),
          user_ms: +(c.user / 1e3).toFixed(1),
          sys_ms: +(c.system / 1e3).toFixed(1),
          reduce_ms: +(Number(reduceNs) / 1e6).toFixed(1),
          minflt: ru.minorPageFault - ru0.minorPageFault,
          nivcsw: ru.involuntaryContextSwitches - ru0.involuntaryContextSwitches,
          nvcsw: ru.voluntaryContextSwitches - ru0.voluntaryContextSwitches,
          us_p25_med_p75: {
            reduce: q(T.r),
            memcpy: q(T.cp),
            hot_copied: q(T.copied),
            hot_kernel_filled: q(T.kfilled),
          },
        }),
      );
      server.close();
      process.exit(0);
    };
    sock.on('end', done);
    sock.on('close', done);
    if (mode.startsWith('data')) {
      let pre = Buffer.alloc(8 + HDR),
        preGot = 0,
        payload = null,
        got = 0;
      sock.on('data', (chunk) => {
        let off = 0;
        while (off < chunk.length) {
          if (payload === null) {
            const k = Math.min(8 + HDR - preGot, chunk.length - off);
            chunk.copy(pre, preGot, off, off + k);
            preGot += k;
            off += k;
            if (preGot < 8 + HDR) return;
            preGot = 0;
            const need = pre.readUInt32LE(4);
            if (chunk.length - off >= need) {
              reduce(chunk.subarray(off, off + need));
              off += need;
              continue;
            }
            payload = take(need);
            got = 0;
          }
          const k = Math.min(payload.length - got, chunk.length - off);
          chunk.copy(payload, got, off, off + k);
          got += k;
          off += k;
          if (got < payload.length) return;
          reduce(payload);
          payload = null;
        }
      });
    } else {
      const syms = Object.getOwnPropertySymbols(sock);
      const sym = (d) => syms.find((s) => s.description === d);
      let state = 0,
        payload = null,
        got = 0,
        hGot = 0;
      const next = () => (state === 0 ? hdrBuf.subarray(hGot) : payload.subarray(got));
      const cb = (n) => {
        if (state === 0) {
          hGot += n;
          if (hGot < 8 + HDR) return;
          hGot = 0;
          payload = take(hdrBuf.readUInt32LE(4));
          got = 0;
          state = 1;
          return;
        }
        got += n;
        if (got < payload.length) return;
        reduce(payload);
        payload = null;
        state = 0;
      };
      sock[sym('kBuffer')] = next();
      sock[sym('kBufferCb')] = cb;
      sock[sym('kBufferGen')] = next;
      sock._handle.useUserBuffer(sock[sym('kBuffer')]);
      sock.resume();
    }
  });
}
