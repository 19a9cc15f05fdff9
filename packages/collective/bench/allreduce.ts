/**
 * All-reduce benchmark in the style of nccl-tests.
 *
 *   npm run bench:allreduce -- [--nproc 2,4] [--wires f32,f16,bf16] [--min-bytes 4096] [--max-bytes 268435456]
 *                              [--vs-gloo] [--json] [--transport auto|shm|ipc|tcp] [--no-launcher] [--netns]
 *   npm run bench:allreduce -- --nodes 2 [--nproc 2] [--algos ring,hier] [--rounds 3] [--link-rate 1gbit]
 *                              [--min-bytes 16777216] [--vs-gloo] [--json]
 *
 * The driver runs every world size under `mtl-launch --standalone --nproc N` (script mode; with
 * --no-launcher it spawns the ranks itself) and, with --vs-gloo, PyTorch's gloo on the same sizes
 * (/usr/bin/python3 bench/gloo_allreduce.py). Each iteration starts after a barrier; a row
 * reports min/median/max over iterations of the slowest rank's time, algbw = bytes/median and
 * busbw = algbw·2(N−1)/N. --json prints one object per line instead of the table.
 *
 * --netns (root): two "nodes", Linux network namespaces joined by a veth pair (as the multi-node
 * tests build them), N/2 ranks each under `mtl-launch --nnodes 2`; gloo runs the same way. Ring
 * neighbours on different nodes talk over the veth pair, the kernel's real network path (flat ring).
 *
 * --nodes 2 (needs root): two "nodes" as network namespaces joined by a veth pair, `mtl-launch
 * --nnodes 2 --nproc N` in each, f32 only. Every round runs each of --algos (MTL_PG_ALGO) and,
 * with --vs-gloo, gloo on the same 2 × N layout, alternating (ABAB…); the table gives each
 * round's busbw. --link-rate shapes each veth's egress (`tc qdisc … tbf rate`, a token bucket; netem
 * is not in every kernel): a link slower than the CPUs, as between real nodes.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { netnsHosts, type NetnsHosts } from '../../../test/support/netns.js';
import { initProcessGroup, KERNELS, StoreServer, type Wire } from '../src/index.js';

interface Row {
  impl?: 'gloo';
  /** The process group's all-reduce algorithm ('ring' or 'hier'); gloo rows: its flat ring. */
  algo?: string;
  round?: number;
  nproc: number;
  bytes: number;
  wire: string;
  median_s: number;
  min_s: number;
  max_s: number;
  algbw_gbps: number;
  busbw_gbps: number;
  /** CPU seconds (user+sys) per call, mean over ranks: the cost that contention does not hide. */
  cpu_s?: number;
  /** How rank 0 reaches its right neighbour ('shm', 'ipc', 'tcp') and which element kernels ran. */
  transport?: string;
  kernels?: string;
}

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../../..');

function arg(argv: string[], name: string, fallback: string): string {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
}

function sizes(min: number, max: number): number[] {
  const out: number[] = [];
  for (let b = min; b <= max; b *= 4) out.push(b);
  return out;
}

const itersFor = (bytes: number) => Math.max(5, Math.min(500, Math.floor((512 << 20) / bytes)));

async function worker(argv: string[]): Promise<void> {
  const out = arg(argv, '--out', '');
  const wires = arg(argv, '--wires', 'f32').split(',') as Wire[];
  const list = arg(argv, '--sizes', '4096').split(',').map(Number);
  const pg = await initProcessGroup();
  const rows: Row[] = [];
  for (const wire of wires) {
    for (const bytes of list) {
      const buf = new Float32Array(bytes / 4);
      for (let i = 0; i < buf.length; i++) buf[i] = Math.random() * 2 - 1;
      for (let i = 0; i < 2; i++) await pg.allReduce(buf, { op: 'mean', wire });
      const n = itersFor(bytes);
      const times = new Float64Array(n + 1);
      const cpu0 = process.cpuUsage();
      for (let i = 0; i < n; i++) {
        await pg.barrier();
        const t0 = process.hrtime.bigint();
        await pg.allReduce(buf, { op: 'mean', wire });
        times[i] = Number(process.hrtime.bigint() - t0) / 1e9;
      }
      const cpu = process.cpuUsage(cpu0);
      times[n] = (cpu.user + cpu.system) / 1e6 / n;
      const all = (await pg.allGather(new Uint8Array(times.buffer))).map(
        (b) => new Float64Array(Uint8Array.from(b).buffer),
      );
      const slowest = Array.from(times.subarray(0, n), (_, i) => Math.max(...all.map((t) => t[i]!))).sort(
        (a, b) => a - b,
      );
      const cpuPerCall = all.reduce((s, t) => s + t[n]!, 0) / all.length;
      const median = slowest[Math.floor(slowest.length / 2)]!;
      const algbw = bytes / median / 1e9;
      rows.push({
        nproc: pg.worldSize,
        bytes,
        wire,
        median_s: median,
        min_s: slowest[0]!,
        max_s: slowest[slowest.length - 1]!,
        algbw_gbps: algbw,
        busbw_gbps: (algbw * 2 * (pg.worldSize - 1)) / pg.worldSize,
        cpu_s: cpuPerCall,
        transport: [
          ...new Set(pg.peerEndpoints.filter((e) => e !== 'self').map((e) => e.split(':')[0]!)),
        ].join('+'),
        algo: pg.algorithm,
        kernels: KERNELS,
      });
    }
  }
  await pg.close();
  if (pg.rank === 0 && out) {
    const { writeFileSync } = await import('node:fs');
    writeFileSync(out, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  }
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], env, cwd: root });
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      code === 0
        ? resolveRun()
        : reject(new Error(`${cmd} ${args.slice(0, 6).join(' ')} … exited with ${signal ?? code}`)),
    );
  });
}

function readRows(file: string): Row[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Row);
}

// For profiling, e.g. MTL_BENCH_EXEC_ARGV="--cpu-prof --cpu-prof-dir=/tmp/prof" with --no-launcher.
const extraExecArgv = (process.env.MTL_BENCH_EXEC_ARGV ?? '').split(' ').filter(Boolean);

async function runRanks(
  nproc: number,
  workerArgs: string[],
  useLauncher: boolean,
  transport: string,
): Promise<void> {
  const sourceArgv = ['--conditions=mtl-source', '--import', 'tsx'];
  const self = fileURLToPath(import.meta.url);
  const env = { ...process.env, MTL_PG_TRANSPORT: transport };
  if (useLauncher) {
    await run(
      process.execPath,
      [
        ...sourceArgv,
        join(root, 'launcher/src/cli.ts'),
        '--standalone',
        '--nproc',
        String(nproc),
        self,
        ...workerArgs,
      ],
      env,
    );
    return;
  }
  const token = 'bench';
  const store = await StoreServer.listen({ host: '127.0.0.1', port: 0, token });
  try {
    await Promise.all(
      Array.from({ length: nproc }, (_, rank) =>
        run(process.execPath, [...sourceArgv, ...extraExecArgv, self, ...workerArgs], {
          ...env,
          RANK: String(rank),
          WORLD_SIZE: String(nproc),
          MASTER_ADDR: '127.0.0.1',
          MASTER_PORT: String(store.port),
          MTL_RUN_ID: `bench-${process.pid}`,
          MTL_RUN_TOKEN: token,
        }),
      ),
    );
  } finally {
    await store.close();
  }
}

/** The ranks as two nodes, one per namespace, each under its own launcher (see --netns). */
async function runNetnsRanks(hosts: NetnsHosts, nproc: number, workerArgs: string[], transport: string) {
  if (nproc % 2 !== 0) throw new Error(`--netns splits the ranks over 2 nodes: --nproc ${nproc} is odd`);
  const port = String(20000 + Math.floor(Math.random() * 20000));
  const env = { ...process.env, MTL_PG_TRANSPORT: transport, MTL_RUN_TOKEN: 'bench' };
  const self = fileURLToPath(import.meta.url);
  await Promise.all(
    [0, 1].map((node) =>
      run(
        'ip',
        [
          ...[
            'netns',
            'exec',
            hosts.ns[node]!,
            process.execPath,
            '--conditions=mtl-source',
            '--import',
            'tsx',
          ],
          join(root, 'launcher/src/cli.ts'),
          ...['--nnodes', '2', '--node-rank', String(node), '--nproc', String(nproc / 2)],
          ...['--master-addr', hosts.addr[0], '--master-port', port, '--run-id', `bench-${process.pid}`],
          self,
          ...workerArgs,
        ],
        env,
      ),
    ),
  );
}

async function runNetnsGloo(hosts: NetnsHosts, python: string, nproc: number, args: string[]) {
  const port = String(20000 + Math.floor(Math.random() * 20000));
  await Promise.all(
    [0, 1].map((node) => {
      // gloo binds the interface named by GLOO_SOCKET_IFNAME: the veth end that holds the address.
      const ip = spawnSync('ip', ['-n', hosts.ns[node]!, '-o', '-4', 'addr', 'show'], { encoding: 'utf8' });
      const line = ip.stdout.split('\n').find((l) => l.includes(` ${hosts.addr[node]}/`));
      const ifname = line?.split(/\s+/)[1]?.replace(/@.*/, '');
      if (!ifname) throw new Error(`no interface with ${hosts.addr[node]} in namespace ${hosts.ns[node]}`);
      return run('ip', [
        ...['netns', 'exec', hosts.ns[node]!, python, join(here, 'gloo_allreduce.py'), ...args],
        ...['--nproc', String(nproc / 2), '--nnodes', '2', '--node-rank', String(node)],
        ...['--master-addr', hosts.addr[0], '--master-port', port, '--ifname', ifname],
      ]);
    }),
  );
}

function fmtBytes(b: number): string {
  return b >= 1 << 20 ? `${b / (1 << 20)} MiB` : `${b / 1024} KiB`;
}

function printTable(nproc: number, rows: Row[], gloo: Row[]): void {
  const g = new Map(gloo.map((r) => [r.bytes, r]));
  const how = rows[0]?.transport ? ` (ring over ${rows[0].transport}, ${rows[0].kernels} kernels)` : '';
  console.log(`\n# nproc ${nproc}${how}: times over iterations of the slowest rank; busbw = algbw·2(N−1)/N`);
  const head = ['size', 'wire', 'min ms', 'median ms', 'max ms', 'algbw GB/s', 'busbw GB/s', 'cpu ms/call'];
  if (gloo.length) head.push('gloo median ms', 'gloo busbw', 'busbw ×gloo', 'gloo cpu ms');
  console.log(head.map((h, i) => (i < 2 ? h.padEnd(i === 0 ? 9 : 5) : h.padStart(12))).join(' '));
  for (const r of rows) {
    const cells = [
      fmtBytes(r.bytes).padEnd(9),
      r.wire.padEnd(5),
      ...[r.min_s * 1e3, r.median_s * 1e3, r.max_s * 1e3].map((v) => v.toFixed(3).padStart(12)),
      ...[r.algbw_gbps, r.busbw_gbps].map((v) => v.toFixed(3).padStart(12)),
      (r.cpu_s === undefined ? '-' : (r.cpu_s * 1e3).toFixed(3)).padStart(12),
    ];
    const gr = g.get(r.bytes);
    if (gloo.length) {
      cells.push(
        (gr ? (gr.median_s * 1e3).toFixed(3) : '-').padStart(12),
        (gr ? gr.busbw_gbps.toFixed(3) : '-').padStart(12),
        (gr ? (r.busbw_gbps / gr.busbw_gbps).toFixed(2) : '-').padStart(12),
        (gr?.cpu_s === undefined ? '-' : (gr.cpu_s * 1e3).toFixed(3)).padStart(12),
      );
    }
    console.log(cells.join(' '));
  }
}

async function driver(argv: string[]): Promise<void> {
  const nprocs = arg(argv, '--nproc', '2,4').split(',').map(Number);
  const wires = arg(argv, '--wires', 'f32,f16,bf16');
  const list = sizes(
    Number(arg(argv, '--min-bytes', '4096')),
    Number(arg(argv, '--max-bytes', String(256 << 20))),
  );
  const json = argv.includes('--json');
  const vsGloo = argv.includes('--vs-gloo');
  const transport = arg(argv, '--transport', 'auto');
  const useLauncher = !argv.includes('--no-launcher') && existsSync(join(root, 'launcher/src/cli.ts'));
  const python = '/usr/bin/python3';
  const dir = mkdtempSync(join(tmpdir(), 'mtl-bench-'));
  let hosts: NetnsHosts | null = null;
  if (argv.includes('--netns')) {
    hosts = netnsHosts('ab');
    if (hosts.skip) throw new Error(`--netns: ${hosts.skip}`);
  }
  try {
    for (const nproc of nprocs) {
      const out = join(dir, `mtl-${nproc}.jsonl`);
      const workerArgs = ['--worker', '--out', out, '--wires', wires, '--sizes', list.join(',')];
      if (hosts) await runNetnsRanks(hosts, nproc, workerArgs, transport);
      else await runRanks(nproc, workerArgs, useLauncher, transport);
      const rows = readRows(out);
      let gloo: Row[] = [];
      if (vsGloo) {
        if (!existsSync(python)) throw new Error(`--vs-gloo needs Debian's python3-torch at ${python}`);
        const gout = join(dir, `gloo-${nproc}.jsonl`);
        if (hosts) await runNetnsGloo(hosts, python, nproc, ['--sizes', list.join(','), '--out', gout]);
        else
          await run(python, [
            join(here, 'gloo_allreduce.py'),
            '--nproc',
            String(nproc),
            '--sizes',
            list.join(','),
            '--out',
            gout,
          ]);
        gloo = readRows(gout);
      }
      if (json) for (const r of [...rows, ...gloo]) console.log(JSON.stringify(r));
      else printTable(nproc, rows, gloo);
    }
  } finally {
    hosts?.tearDown();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The interface that holds `addr` inside namespace `ns` (gloo binds by interface name). */
function ifaceOf(ns: string, addr: string): string {
  const r = spawnSync('ip', ['-n', ns, '-o', '-4', 'addr', 'show'], { encoding: 'utf8' });
  const line = r.stdout.split('\n').find((l) => l.includes(` ${addr}/`));
  const name = line?.split(/\s+/)[1];
  if (!name) throw new Error(`no interface with ${addr} in namespace ${ns}: ${r.stderr}`);
  return name;
}

async function netnsDriver(argv: string[]): Promise<void> {
  const nodes = Number(arg(argv, '--nodes', '2'));
  if (nodes !== 2) throw new Error(`--nodes: only 2 namespace nodes are built, got ${nodes}`);
  const nproc = Number(arg(argv, '--nproc', '2'));
  const algos = arg(argv, '--algos', 'ring,hier').split(',');
  const rounds = Number(arg(argv, '--rounds', '3'));
  const rate = arg(argv, '--link-rate', '');
  const list = sizes(
    Number(arg(argv, '--min-bytes', String(16 << 20))),
    Number(arg(argv, '--max-bytes', String(256 << 20))),
  );
  const json = argv.includes('--json');
  const impls = [...algos, ...(argv.includes('--vs-gloo') ? ['gloo'] : [])];
  const hosts: NetnsHosts = netnsHosts('bar');
  if (hosts.skip) throw new Error(`--nodes: cannot build namespace nodes: ${hosts.skip}`);
  const dir = mkdtempSync(join(tmpdir(), 'mtl-bench-'));
  const sourceArgv = ['--conditions=mtl-source', '--import', 'tsx'];
  const cli = join(root, 'launcher/src/cli.ts');
  const self = fileURLToPath(import.meta.url);
  let port = 29600 + (process.pid % 200) * 10;
  try {
    if (rate) {
      for (const [i, ns] of hosts.ns.entries()) {
        const dev = ifaceOf(ns, hosts.addr[i]);
        const r = spawnSync(
          'ip',
          [
            'netns',
            'exec',
            ns,
            'tc',
            'qdisc',
            'add',
            'dev',
            dev,
            'root',
            'tbf',
            'rate',
            rate,
            'burst',
            '256kb',
            'latency',
            '10ms',
          ],
          { encoding: 'utf8' },
        );
        if (r.status !== 0) throw new Error(`tc qdisc add dev ${dev} root tbf rate ${rate}: ${r.stderr}`);
      }
    }
    const rows: Row[] = [];
    for (let round = 0; round < rounds; round++) {
      for (const impl of impls) {
        const out = join(dir, `${impl.replace('/', 'p')}-${round}.jsonl`);
        port += 1;
        await Promise.all(
          [0, 1].map((node) => {
            const nsExec = ['netns', 'exec', hosts.ns[node]];
            if (impl === 'gloo') {
              return run('ip', [
                ...nsExec,
                '/usr/bin/python3',
                join(here, 'gloo_allreduce.py'),
                '--nproc',
                String(nproc),
                '--nnodes',
                '2',
                '--node-rank',
                String(node),
                '--master-addr',
                hosts.addr[0],
                '--master-port',
                String(port),
                '--ifname',
                ifaceOf(hosts.ns[node], hosts.addr[node]),
                '--sizes',
                list.join(','),
                '--out',
                out,
              ]);
            }
            return run(
              'ip',
              [
                ...nsExec,
                process.execPath,
                ...sourceArgv,
                cli,
                '--nnodes',
                '2',
                '--nproc',
                String(nproc),
                '--node-rank',
                String(node),
                '--master-addr',
                hosts.addr[0],
                '--master-port',
                String(port),
                '--run-id',
                `bench-${port}`,
                self,
                '--worker',
                '--out',
                out,
                '--wires',
                'f32',
                '--sizes',
                list.join(','),
              ],
              {
                ...process.env,
                // 'hier/1': the hierarchical all-reduce with that many pipeline pieces.
                MTL_PG_ALGO: impl.split('/')[0],
                ...(impl.includes('/') ? { MTL_PG_HIER_PIECES: impl.split('/')[1] } : {}),
                MTL_RUN_TOKEN: 'bench',
              },
            );
          }),
        );
        for (const r of readRows(out)) rows.push({ ...r, round, algo: impl });
      }
    }
    if (json) for (const r of rows) console.log(JSON.stringify(r));
    else {
      const world = 2 * nproc;
      console.log(
        `\n# 2 namespace nodes × ${nproc} (world ${world}), f32${rate ? `, veth egress tbf rate ${rate}` : ''}: busbw GB/s per round (ABAB), median; cpu ms per call and rank (median)`,
      );
      const head = [
        'size',
        ...impls.map((i) => `${i} busbw`.padStart(26)),
        ...impls.slice(1).map((i) => `${i}/${impls[0]}`.padStart(12)),
        ...algos.map((i) => `${i} cpu ms`.padStart(14)),
      ];
      console.log(head.join(' '));
      for (const bytes of list) {
        const med = (impl: string) => {
          const v = rows
            .filter((r) => r.bytes === bytes && r.algo === impl)
            .map((r) => r.busbw_gbps)
            .sort((a, b) => a - b);
          return { all: v, median: v[Math.floor(v.length / 2)] ?? NaN };
        };
        const m = impls.map(med);
        console.log(
          [
            fmtBytes(bytes).padEnd(9),
            ...m.map((x) =>
              `${x.all.map((v) => v.toFixed(2)).join('/')} (${x.median.toFixed(2)})`.padStart(26),
            ),
            ...m.slice(1).map((x) => (x.median / m[0]!.median).toFixed(2).padStart(12)),
            ...algos.map((impl) => {
              const c = rows
                .filter((r) => r.bytes === bytes && r.algo === impl && r.cpu_s !== undefined)
                .map((r) => r.cpu_s!)
                .sort((a, b) => a - b);
              return (c.length ? (c[Math.floor(c.length / 2)]! * 1e3).toFixed(0) : '-').padStart(14);
            }),
          ].join(' '),
        );
      }
      const t = rows.find((r) => r.algo === 'hier')?.transport ?? rows.find((r) => r.transport)?.transport;
      console.log(
        `# peers of rank 0 reached over ${t ?? '?'}; ${rows.find((r) => r.kernels)?.kernels ?? '?'} kernels`,
      );
    }
  } finally {
    hosts.tearDown();
    rmSync(dir, { recursive: true, force: true });
  }
}

const argv = process.argv.slice(2);
if (argv.includes('--worker')) await worker(argv);
else if (argv.includes('--nodes')) await netnsDriver(argv);
else await driver(argv);
