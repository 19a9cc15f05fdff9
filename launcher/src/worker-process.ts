import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import type { WorkerLogs } from './worker-logs.js';

/** How one worker ended. */
export interface WorkerExit {
  rank: number;
  localRank: number;
  pid: number | undefined;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Milliseconds since the epoch, to order failures and find the first (the root cause). */
  atMs: number;
  /** The launcher had asked it to stop (its exit is a consequence, not a failure). */
  stoppedByLauncher: boolean;
  /** Could not be started at all (spawn error). */
  spawnError?: string | undefined;
  stderrTail: string[];
}

export function isFailure(e: WorkerExit): boolean {
  return !e.stoppedByLauncher && (e.code !== 0 || e.signal !== null);
}

export interface WorkerSpawn {
  rank: number;
  localRank: number;
  /** node flags, then the program and its arguments */
  argv: string[];
  env: NodeJS.ProcessEnv;
  cwd?: string | undefined;
  logs: WorkerLogs;
}

/**
 * One worker process. It runs in its own process group (so a stop reaches what it spawned too),
 * with stdin closed, stdout/stderr piped to the log router and an IPC channel for metrics.
 */
export class WorkerProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<WorkerExit>;
  private stopRequested = false;
  private done = false;

  constructor(
    readonly spec: WorkerSpawn,
    drainMs = 500,
  ) {
    const [program, ...args] = spec.argv;
    this.child = spawn(program ?? process.execPath, args, {
      cwd: spec.cwd,
      env: spec.env,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      detached: true,
    });
    spec.logs.attach(this.child.stdout, this.child.stderr);
    this.exited = new Promise<WorkerExit>((resolve) => {
      const finish = (code: number | null, signal: NodeJS.Signals | null, spawnError?: string): void => {
        if (this.done) return;
        this.done = true;
        const atMs = Date.now();
        void spec.logs.drain(drainMs).then(() =>
          resolve({
            rank: spec.rank,
            localRank: spec.localRank,
            pid: this.child.pid,
            code,
            signal,
            atMs,
            stoppedByLauncher: this.stopRequested,
            spawnError,
            stderrTail: spec.logs.stderrTail.get(),
          }),
        );
      };
      this.child.once('exit', (code, signal) => finish(code, signal));
      this.child.once('error', (err) => finish(null, null, err.message));
    });
  }

  /** The launcher already sent this worker a stop signal. */
  get stopping(): boolean {
    return this.stopRequested;
  }

  get alive(): boolean {
    return !this.done;
  }

  /** Sends `sig` to the worker's process group (falling back to the worker alone). */
  signal(sig: NodeJS.Signals, asStop = true): void {
    if (this.done) return;
    if (asStop) this.stopRequested = true;
    const pid = this.child.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, sig);
    } catch {
      try {
        process.kill(pid, sig);
      } catch {
        // already gone
      }
    }
  }
}
