import { isFailure, WorkerProcess } from './worker-process.js';
import type { WorkerExit, WorkerSpawn } from './worker-process.js';

/**
 * The local workers of one attempt. It tells the agent about the first failure as soon as it
 * happens and about success once every worker exited 0; stopping is SIGTERM (or the signal the
 * launcher received) to all, then SIGKILL to whoever is left after the grace period.
 */
export class WorkerGroup {
  readonly workers: WorkerProcess[];
  readonly exits: WorkerExit[] = [];
  /** Resolves with the first failing worker; never resolves when none fails. */
  readonly firstFailure: Promise<WorkerExit>;
  /** Resolves with every exit once all workers are gone. */
  readonly allExited: Promise<WorkerExit[]>;

  constructor(specs: WorkerSpawn[], drainMs = 500) {
    this.workers = specs.map((s) => new WorkerProcess(s, drainMs));
    let onFailure!: (e: WorkerExit) => void;
    this.firstFailure = new Promise((r) => (onFailure = r));
    for (const w of this.workers) {
      void w.exited.then(async (e) => {
        this.exits.push(e);
        if (!isFailure(e)) return;
        // Workers that exited before this one may still be draining their output: wait for them,
        // then name the earliest failure (a crash often makes its peers fail milliseconds later).
        await Promise.all(this.workers.filter((o) => !o.alive).map((o) => o.exited));
        const failures = this.exits.filter(isFailure).sort((a, b) => a.atMs - b.atMs);
        onFailure(failures[0] ?? e);
      });
    }
    this.allExited = Promise.all(this.workers.map((w) => w.exited));
  }

  get succeeded(): boolean {
    return this.exits.length === this.workers.length && this.exits.every((e) => e.code === 0);
  }

  /** Forwards a signal the launcher received to every live worker (which then counts as stopping). */
  forward(sig: NodeJS.Signals): void {
    for (const w of this.workers) w.signal(sig);
  }

  /**
   * Stops every live worker: `sig` to those not already stopping, then SIGKILL after `graceMs`;
   * resolves when all are gone.
   */
  async stop(graceMs: number, sig: NodeJS.Signals = 'SIGTERM'): Promise<WorkerExit[]> {
    for (const w of this.workers) if (!w.stopping) w.signal(sig);
    const timer = setTimeout(() => {
      for (const w of this.workers) w.signal('SIGKILL');
    }, graceMs);
    const exits = await this.allExited;
    clearTimeout(timer);
    return exits;
  }
}
