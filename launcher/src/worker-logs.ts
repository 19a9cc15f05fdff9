import { createWriteStream, mkdirSync } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { PROGRESS_MARKER, type StatusLine } from './console-status.js';
import { LineSplitter, TailBuffer } from './lines.js';
import type { StreamSet } from './log-spec.js';

/** Where one worker's output goes during one attempt. */
export interface WorkerLogPlan {
  rank: number;
  /** Streams shown on the launcher's console, each line prefixed `[rankN]: `. */
  console: StreamSet;
  /** Directory for stdout.log / stderr.log, or none. */
  dir?: string | undefined;
  /** The console's status line: progress lines go there, the others above it. */
  status?: StatusLine | undefined;
}

export interface Sink {
  write(text: string): void;
}

/**
 * Routes one worker's stdout and stderr: whole prefixed lines to the console, raw bytes to the
 * attempt's log files, and the stderr tail kept for the failure summary.
 */
export class WorkerLogs {
  readonly stderrTail = new TailBuffer(20);
  private readonly files: WriteStream[] = [];
  private readonly ended: Promise<void>[] = [];
  private drained = false;

  constructor(
    private readonly plan: WorkerLogPlan,
    private readonly out: Sink = process.stdout,
    private readonly err: Sink = process.stderr,
  ) {
    if (plan.dir !== undefined) mkdirSync(plan.dir, { recursive: true });
  }

  attach(stdout: Readable | null, stderr: Readable | null): void {
    if (stdout) this.route(stdout, 'stdout', this.plan.console.out ? this.out : undefined, false);
    if (stderr) this.route(stderr, 'stderr', this.plan.console.err ? this.err : undefined, true);
  }

  /** Resolves when both streams ended (or after `timeoutMs`: a grandchild may hold a pipe open). */
  async drain(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)));
    await Promise.race([Promise.all(this.ended), timeout]);
    clearTimeout(timer);
    this.drained = true;
    await Promise.all(this.files.map((f) => new Promise<void>((r) => f.end(r))));
  }

  private route(stream: Readable, name: 'stdout' | 'stderr', sink: Sink | undefined, tail: boolean): void {
    const prefix = `[rank${this.plan.rank}]: `;
    const file =
      this.plan.dir !== undefined ? createWriteStream(join(this.plan.dir, `${name}.log`)) : undefined;
    if (file) {
      file.on('error', (e) => this.err.write(`mtl-launch: cannot write ${file.path}: ${e.message}\n`));
      this.files.push(file);
    }
    const status = this.plan.status;
    const splitter = new LineSplitter((line) => {
      if (line.startsWith(PROGRESS_MARKER)) {
        const text = line.slice(PROGRESS_MARKER.length);
        if (sink && status) status.set(prefix + text);
        else sink?.write(prefix + text + '\n');
        return;
      }
      if (tail) this.stderrTail.push(line);
      if (sink && status) status.line(sink, prefix + line + '\n');
      else sink?.write(prefix + line + '\n');
    });
    this.ended.push(
      new Promise<void>((resolve) => {
        stream.on('data', (chunk: Buffer) => {
          if (this.drained) return;
          file?.write(chunk);
          splitter.push(chunk);
        });
        stream.on('end', () => {
          splitter.end();
          resolve();
        });
        stream.on('error', () => resolve());
      }),
    );
  }
}
