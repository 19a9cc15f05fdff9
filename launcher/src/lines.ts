/**
 * Cuts a byte stream into whole lines. A worker's pipe delivers arbitrary chunks; the launcher must
 * only ever write complete lines so that two workers printing at once never interleave mid-line.
 * A line longer than `maxLineBytes` is emitted in pieces of that size (a runaway line without a
 * newline must not grow the launcher's memory).
 */
export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly maxLineBytes = 64 * 1024,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl < 0) break;
      this.pending.push(chunk.subarray(start, nl));
      this.emit();
      start = nl + 1;
    }
    if (start < chunk.length) {
      this.pending.push(chunk.subarray(start));
      this.pendingBytes += chunk.length - start;
      while (this.pendingBytes >= this.maxLineBytes) {
        const all = Buffer.concat(this.pending);
        this.pending = [all.subarray(this.maxLineBytes)];
        this.pendingBytes = all.length - this.maxLineBytes;
        this.onLine(stripCr(all.subarray(0, this.maxLineBytes).toString('utf8')));
      }
    }
  }

  /** Emits what is left as a last line (a stream that ended without a newline). */
  end(): void {
    if (this.pendingBytes > 0) this.emit();
  }

  private emit(): void {
    const line = Buffer.concat(this.pending).toString('utf8');
    this.pending = [];
    this.pendingBytes = 0;
    this.onLine(stripCr(line));
  }
}

function stripCr(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}

/** The last `maxLines` lines of a stream, for failure summaries. */
export class TailBuffer {
  private readonly lines: string[] = [];
  constructor(private readonly maxLines = 20) {}
  push(line: string): void {
    this.lines.push(line.length > 1000 ? line.slice(0, 1000) + '…' : line);
    if (this.lines.length > this.maxLines) this.lines.shift();
  }
  get(): string[] {
    return [...this.lines];
  }
}
