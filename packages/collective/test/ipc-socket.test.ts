// Unix socket files of the transports: gone after every way a process can end except SIGKILL, and
// what a SIGKILL left is swept by the next transport, while sockets something still serves are kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sweepStaleSockets } from '../src/transport/ipcSocket.js';
import { SOURCE_EXEC_ARGV } from '../../../scripts/source-argv.mjs';

const NET_TRANSPORT = fileURLToPath(new URL('../src/transport/netTransport.ts', import.meta.url));
const ZMQ_TRANSPORT = fileURLToPath(new URL('../src/transport/zmqTransport.ts', import.meta.url));

/** A child that opens a transport (its socket file in `dir`), prints the path, then ends as `how` says. */
function child(dir: string, engine: 'net' | 'zmq', how: 'exit' | 'throw' | 'wait') {
  const script = join(dir, `child-${engine}-${how}.mts`);
  writeFileSync(
    script,
    `const { ${engine === 'net' ? 'NetTransport' : 'ZmqTransport'}: T } = await import(${JSON.stringify(engine === 'net' ? NET_TRANSPORT : ZMQ_TRANSPORT)});
const t = await T.open({ rank: 0, size: 1, bindHost: '127.0.0.1', transport: 'ipc' });
console.log(t.self.ipc.slice('ipc://'.length));
${how === 'exit' ? 'process.exit(3);' : how === 'throw' ? "throw new Error('worker failed');" : 'setInterval(() => {}, 1000);'}
`,
  );
  const proc = spawn(process.execPath, [...(SOURCE_EXEC_ARGV as string[]), script], {
    env: { ...process.env, TMPDIR: dir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const path = new Promise<string>((resolve, reject) => {
    proc.stdout.on('data', () => {
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    proc.once('exit', () =>
      out.includes('\n')
        ? resolve(out.split('\n')[0]!)
        : reject(new Error(`child ended before opening: ${err}`)),
    );
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { proc, path, exit };
}

const sockets = (dir: string): string[] => readdirSync(dir).filter((n) => n.endsWith('.sock'));

test('the socket file is unlinked when the process exits, throws, or gets SIGTERM/SIGINT (net and zmq transports)', async () => {
  for (const engine of ['net', 'zmq'] as const) {
    for (const how of ['exit', 'throw', 'SIGTERM', 'SIGINT'] as const) {
      const dir = mkdtempSync(join(tmpdir(), 'mtl-ipc-'));
      try {
        const c = child(dir, engine, how === 'exit' || how === 'throw' ? how : 'wait');
        const path = await c.path;
        assert.ok(
          path.startsWith(join(dir, `mtl-${c.proc.pid}-`)),
          `${engine}/${how}: ${path} names its owner`,
        );
        if (how === 'SIGTERM' || how === 'SIGINT') {
          assert.ok(existsSync(path), `${engine}/${how}: the socket exists while the process runs`);
          c.proc.kill(how);
        }
        const end = await c.exit;
        if (how === 'SIGTERM' || how === 'SIGINT')
          assert.equal(end.signal, how, `${engine}: still ends by ${how}`);
        else assert.notEqual(end.code, 0);
        assert.deepEqual(sockets(dir), [], `${engine}/${how}: no socket file left`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
});

function listen(path: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(path, () => resolve(s));
  });
}

test('a stale socket (owner gone, connection refused) is swept; served ones and other files stay', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mtl-ipc-'));
  const servers: Server[] = [];
  try {
    // A SIGKILLed owner leaves its file behind.
    const killed = child(dir, 'net', 'wait');
    const stale = await killed.path;
    killed.proc.kill('SIGKILL');
    await killed.exit;
    assert.ok(existsSync(stale), 'SIGKILL leaves the file');
    // An older name without a pid, nobody listening: a plain file where the socket was.
    const legacy = join(dir, 'mtl-0123abcd.sock');
    writeFileSync(legacy, '');
    // A pid that looks gone (another pid namespace) whose socket still answers: kept.
    const foreign = join(dir, 'mtl-2147483646-aa.sock');
    servers.push(await listen(foreign));
    // Our own live socket, and a file that is not ours at all.
    const mine = join(dir, `mtl-${process.pid}-bb.sock`);
    servers.push(await listen(mine));
    writeFileSync(join(dir, 'mtl-notes.txt'), 'x');
    assert.equal(await sweepStaleSockets(dir, 500), 2);
    const left = readdirSync(dir).filter((n) => n.startsWith('mtl-'));
    assert.deepEqual(
      left.sort(),
      ['mtl-2147483646-aa.sock', `mtl-${process.pid}-bb.sock`, 'mtl-notes.txt'].sort(),
    );
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    rmSync(dir, { recursive: true, force: true });
  }
});
