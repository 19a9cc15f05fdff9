/**
 * Test helpers: a real two-node Slurm cluster on this machine (needs root and Debian's slurmctld,
 * slurmd, slurm-client and munge). `munged` serves one key over a private socket; `slurmctld` and
 * the node `n1` share one network namespace, node `n2` has the other (test/support/netns.ts), each
 * daemon in its own UTS namespace with its node's hostname. Nodes have CPUs only.
 *
 *   const c = await slurmCluster('slm', { CPUs: 2 });
 *   if (c.skip) ...;                                      // why Slurm could not start
 *   const id = c.sbatch(['docker/slurm/mtlface.sbatch'], { cwd, env });
 *   await c.waitState(id, ['COMPLETED'], 60_000);
 *   c.tearDown();                                         // also runs on process exit
 *
 * Every daemon is started with a parent-death signal (`setpriv --pdeathsig KILL`), so a test process
 * killed from outside takes the daemons with it; tearDown() also kills whatever the cluster's jobs
 * left behind (processes carrying this cluster's SLURM_CLUSTER_NAME), then removes the namespaces.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { netnsHosts } from './netns.js';
import { alive, tempDir, waitFor } from './launch.js';

export const NODES = ['n1', 'n2'] as const;

/** A process that belongs to a Slurm job, as /proc shows it. */
export interface JobProcess {
  pid: number;
  ppid: number;
  cmdline: string[];
  env: Record<string, string>;
  /** The node whose UTS namespace the process runs in (its hostname), or undefined. */
  node: string | undefined;
}

export interface SlurmCluster {
  skip: string | undefined;
  /** A directory for the test's own files, removed with the cluster. */
  dir: string;
  /** Submits from node n1 (`sbatch --parsable args...`); returns the job id. */
  sbatch(args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv }): string;
  scancel(jobId: string): void;
  /** `JobState` from `scontrol show job`. */
  state(jobId: string): string;
  /** Polls until the job's state is one of `states`; fails with the state and reason otherwise. */
  waitState(jobId: string, states: string[], timeoutMs: number, onPoll?: () => void): Promise<string>;
  /** The live processes of a job of this cluster (by their SLURM_JOB_ID and SLURM_CLUSTER_NAME). */
  jobProcesses(jobId?: string): JobProcess[];
  /** The daemons' log files, for failure messages. */
  logs(): string;
  /** After tearDown: pids of anything of this cluster still running (daemons, slurmstepd, jobs). */
  leftovers(): number[];
  tearDown(): void;
}

const PROGRAMS = ['munged', 'slurmctld', 'slurmd', 'sbatch', 'scontrol', 'scancel', 'setpriv', 'unshare'];

function onPath(prog: string): boolean {
  return (process.env.PATH ?? '')
    .split(':')
    .concat(['/usr/sbin', '/sbin'])
    .some((d) => d !== '' && existsSync(join(d, prog)));
}

function readEnviron(pid: number): Record<string, string> | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/environ`, 'latin1');
    const env: Record<string, string> = {};
    for (const kv of raw.split('\0')) {
      const eq = kv.indexOf('=');
      if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    return env;
  } catch {
    return undefined; // gone, or a kernel thread
  }
}

function ppidOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/**
 * Starts the cluster. `cpus`: CPUs each node declares (the job's `--cpus-per-task` must fit).
 * Resolves with `skip` set (and nothing left running) where Slurm cannot start here.
 */
export async function slurmCluster(tag: string, cpus: number): Promise<SlurmCluster> {
  const missing = PROGRAMS.filter((p) => !onPath(p));
  const hosts = netnsHosts(tag);
  const tmp = tempDir(`mtl-slurm-${tag}-`);
  const dir = tmp.dir;
  // Unique per test process: job processes are found (and, at teardown, reaped) by this name.
  const cluster = `mtl${tag}${process.pid}`.toLowerCase();
  const conf = join(dir, 'slurm.conf');
  const daemons: ChildProcess[] = [];
  const slurmdPids = new Map<string, number>();
  const sbin = ['/usr/sbin', '/sbin', process.env.PATH ?? ''].join(':');
  const baseEnv = { ...process.env, PATH: `${dirname(process.execPath)}:${sbin}`, SLURM_CONF: conf };
  let down = false;

  const inNode = (node: 0 | 1, argv: string[]): string[] => ['ip', 'netns', 'exec', hosts.ns[node], ...argv];
  const run = (argv: string[], env: NodeJS.ProcessEnv = baseEnv, cwd = dir): string => {
    const r = spawnSync(argv[0]!, argv.slice(1), { env, cwd, encoding: 'utf8', timeout: 30_000 });
    if (r.status !== 0)
      throw new Error(
        `${argv.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr}${r.error?.message ?? ''}`,
      );
    return r.stdout;
  };

  /**
   * Processes of this cluster: the jobs' (their SLURM_CLUSTER_NAME) and, with `all`, every process
   * started with this cluster's SLURM_CONF (the daemons and the slurmstepd they fork, which outlive
   * a killed slurmd).
   */
  const clusterProcesses = (opts: { jobId?: string; all?: boolean } = {}): JobProcess[] => {
    const nodeOfUts = new Map<string, string>();
    for (const [node, pid] of slurmdPids) {
      try {
        nodeOfUts.set(readlinkSync(`/proc/${pid}/ns/uts`), node);
      } catch {
        // slurmd gone: its node's processes are reported with node undefined
      }
    }
    const out: JobProcess[] = [];
    for (const entry of readdirSync('/proc')) {
      const pid = Number(entry);
      if (!Number.isInteger(pid) || pid === process.pid) continue;
      const env = readEnviron(pid);
      if (env === undefined) continue;
      const ofJob =
        env.SLURM_CLUSTER_NAME === cluster && (opts.jobId === undefined || env.SLURM_JOB_ID === opts.jobId);
      if (!ofJob && !(opts.all && env.SLURM_CONF === conf)) continue;
      if (!alive(pid)) continue;
      try {
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
          .split('\0')
          .filter((s) => s !== '');
        const node = nodeOfUts.get(readlinkSync(`/proc/${pid}/ns/uts`));
        out.push({ pid, ppid: ppidOf(pid), cmdline, env, node });
      } catch {
        // exited while being read
      }
    }
    return out;
  };

  const logs = (): string =>
    ['slurmctld.log', ...NODES.map((n) => `slurmd-${n}.log`)]
      .map((f) => join(dir, 'log', f))
      .filter((f) => existsSync(f))
      .map((f) => `--- ${f} (tail)\n${readFileSync(f, 'utf8').split('\n').slice(-25).join('\n')}`)
      .join('\n');

  const tearDown = (): void => {
    if (down) return;
    down = true;
    if (daemons.length > 0) {
      // Cancel what still runs while slurmctld is there to do it, then make sure.
      spawnSync('ip', ['netns', 'exec', hosts.ns[0], 'scancel', '--full', `--partition=${cluster}`], {
        env: baseEnv,
        timeout: 10_000,
      });
      const deadline = Date.now() + 5_000;
      while (clusterProcesses().length > 0 && Date.now() < deadline) spawnSync('sleep', ['0.2']);
      for (const d of daemons) if (d.exitCode === null && d.signalCode === null) d.kill('SIGKILL');
      for (const p of clusterProcesses({ all: true })) process.kill(p.pid, 'SIGKILL');
    }
    hosts.tearDown();
    tmp.cleanup();
  };
  // A test process stopped by a signal takes the cluster down first, then dies of that signal.
  const onSignal = (sig: NodeJS.Signals): void => {
    tearDown();
    process.kill(process.pid, sig);
  };
  const skipWith = (why: string): SlurmCluster => {
    tearDown();
    const unusable = (): never => {
      throw new Error(`the Slurm cluster did not start: ${why}`);
    };
    return {
      skip: why,
      dir: '',
      sbatch: unusable,
      scancel: unusable,
      state: unusable,
      waitState: unusable,
      jobProcesses: unusable,
      logs: () => '',
      leftovers: () => [],
      tearDown: () => undefined,
    };
  };

  if (missing.length > 0)
    return skipWith(
      `Slurm is not installed (${missing.join(', ')} missing: scripts/install-system-deps.sh installs slurmctld, slurmd, slurm-client, munge)`,
    );
  if (hosts.skip) return skipWith(hosts.skip);
  process.once('exit', tearDown);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, onSignal);

  // munge: a fresh key, socket and state under the cluster's directory (root-owned, mode 0700).
  const munge = join(dir, 'munge');
  mkdirSync(munge, { mode: 0o700 });
  writeFileSync(join(munge, 'munge.key'), randomBytes(1024), { mode: 0o400 });
  const socket = join(munge, 'munge.socket');
  for (const d of ['state', 'log', 'cgroup', ...NODES.map((n) => `spool/${n}`)])
    mkdirSync(join(dir, d), { recursive: true });

  writeFileSync(
    conf,
    [
      `ClusterName=${cluster}`,
      `SlurmctldHost=${NODES[0]}(${hosts.addr[0]})`,
      'SlurmUser=root',
      'SlurmdUser=root',
      'AuthType=auth/munge',
      `AuthInfo=socket=${socket}`,
      'CredType=cred/munge',
      `StateSaveLocation=${dir}/state`,
      `SlurmdSpoolDir=${dir}/spool/%n`,
      `SlurmctldPidFile=${dir}/slurmctld.pid`,
      `SlurmdPidFile=${dir}/slurmd-%n.pid`,
      `SlurmctldLogFile=${dir}/log/slurmctld.log`,
      `SlurmdLogFile=${dir}/log/slurmd-%n.log`,
      // Processes are tracked through /proc (no cgroup hierarchy is needed or touched).
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'JobAcctGatherType=jobacct_gather/none',
      'AccountingStorageType=accounting_storage/none',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_CPU',
      'MpiDefault=none',
      'SwitchType=switch/none',
      'ReturnToService=2',
      // scancel's SIGTERM to SIGKILL: longer than the launcher's --shutdown-timeout (30 s), so a
      // job's processes that end before it ended on the SIGTERM, not on Slurm's SIGKILL.
      'KillWait=60',
      'InactiveLimit=0',
      'SlurmctldDebug=info',
      'SlurmdDebug=info',
      ...NODES.map((n, i) => `NodeName=${n} NodeAddr=${hosts.addr[i]} CPUs=${cpus} State=UNKNOWN`),
      `PartitionName=${cluster} Nodes=${NODES.join(',')} Default=YES MaxTime=INFINITE State=UP`,
    ].join('\n') + '\n',
  );
  // cgroup/v1 at a private, empty mount point: slurmd initialises a cgroup plugin even with
  // proctrack/linuxproc, and would otherwise look for a cgroup filesystem in the namespace's /sys.
  writeFileSync(join(dir, 'cgroup.conf'), `CgroupPlugin=cgroup/v1\nCgroupMountpoint=${dir}/cgroup\n`);
  hosts.resolve(Object.fromEntries(NODES.map((n, i) => [n, hosts.addr[i]!])));

  const daemon = (argv: string[], name: string): ChildProcess => {
    const p = spawn(argv[0]!, argv.slice(1), { env: baseEnv, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout!.setEncoding('utf8').on('data', (d: string) => (out = (out + d).slice(-4000)));
    p.stderr!.setEncoding('utf8').on('data', (d: string) => (out = (out + d).slice(-4000)));
    p.on('close', (code, signal) => {
      if (!down) writeFileSync(join(dir, 'log', `${name}.exit`), `${code ?? signal}\n${out}`);
    });
    daemons.push(p);
    return p;
  };
  // hostname is set inside a private UTS namespace: `sh -c` runs it, then becomes the daemon.
  const onNode = (node: 0 | 1, argv: string[]): string[] =>
    inNode(node, [
      'unshare',
      '--uts',
      'sh',
      '-c',
      'hostname "$0" && exec setpriv --pdeathsig KILL "$@"',
      NODES[node],
      ...argv,
    ]);

  daemon(
    [
      'setpriv',
      '--pdeathsig',
      'KILL',
      'munged',
      '--foreground',
      '--force',
      `--key-file=${join(munge, 'munge.key')}`,
      `--socket=${socket}`,
      `--pid-file=${join(munge, 'munged.pid')}`,
      `--log-file=${join(dir, 'log', 'munged.log')}`,
      `--seed-file=${join(munge, 'munged.seed')}`,
    ],
    'munged',
  );
  if (!(await waitFor(() => existsSync(socket), 10_000))) return skipWith(`munged did not start: ${logs()}`);
  daemon(onNode(0, ['slurmctld', '-D', '-i', '-f', conf]), 'slurmctld');
  NODES.forEach((n, i) => {
    const p = daemon(onNode(i as 0 | 1, ['slurmd', '-D', '-N', n, '-f', conf]), `slurmd-${n}`);
    slurmdPids.set(n, p.pid!);
  });

  // Both nodes registered and idle.
  const idle = (): boolean => {
    const r = spawnSync('ip', ['netns', 'exec', hosts.ns[0], 'sinfo', '-h', '-N', '-o', '%N %t'], {
      env: baseEnv,
      encoding: 'utf8',
      timeout: 10_000,
    });
    return r.status === 0 && NODES.every((n) => new RegExp(`^${n} idle$`, 'm').test(r.stdout));
  };
  let ready = false;
  const deadline = Date.now() + 30_000;
  while (!ready && Date.now() < deadline) {
    ready = idle();
    if (!ready) await new Promise((r) => setTimeout(r, 300));
  }
  if (!ready) {
    const why = `the Slurm nodes did not become idle within 30 s:\n${logs()}`;
    return skipWith(why);
  }

  const state = (jobId: string): string => {
    const out = run(inNode(0, ['scontrol', '-o', 'show', 'job', jobId]));
    return /JobState=(\S+)/.exec(out)?.[1] ?? 'UNKNOWN';
  };

  const work = join(dir, 'work');
  mkdirSync(work);
  return {
    skip: undefined,
    dir: work,
    sbatch(args, opts) {
      const out = run(inNode(0, ['sbatch', '--parsable', ...args]), { ...baseEnv, ...opts.env }, opts.cwd);
      const id = out.trim().split(';')[0]!;
      if (!/^\d+$/.test(id)) throw new Error(`sbatch printed no job id: ${out}`);
      return id;
    },
    scancel(jobId) {
      run(inNode(0, ['scancel', jobId]));
    },
    state,
    async waitState(jobId, states, timeoutMs, onPoll) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        onPoll?.();
        const s = state(jobId);
        if (states.includes(s)) return s;
        if (
          [
            'FAILED',
            'CANCELLED',
            'TIMEOUT',
            'NODE_FAIL',
            'OUT_OF_MEMORY',
            'BOOT_FAIL',
            'DEADLINE',
            'COMPLETED',
          ].includes(s) ||
          Date.now() > deadline
        ) {
          const info = run(inNode(0, ['scontrol', 'show', 'job', jobId]));
          throw new Error(`job ${jobId} is ${s}, expected ${states.join('/')}:\n${info}\n${logs()}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    jobProcesses: (jobId) => clusterProcesses({ jobId }),
    logs,
    leftovers: () => clusterProcesses({ all: true }).map((p) => p.pid),
    tearDown,
  };
}
