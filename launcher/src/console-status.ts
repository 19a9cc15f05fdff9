/**
 * Rank 0's training progress under mtl-launch. A worker's output is piped, so it cannot redraw a
 * line itself; when the launcher's console is a terminal it sets `MTL_PROGRESS=tty` in the workers,
 * and the progress writer (workers/src/train/progress.ts) then prints each update as one line that
 * starts with PROGRESS_MARKER. The launcher keeps that text as the console's last line, redrawn in
 * place, with every other worker line printed above it. Piped, no marker is sent and progress is
 * plain periodic lines like any other output.
 */
export const PROGRESS_MARKER = '\u0000mtl-progress\u0000';

interface Stream {
  write(text: string): unknown;
}

/** The terminal's last line: a status that ordinary lines are written above. */
export class StatusLine {
  private text = '';

  constructor(
    private readonly term: Stream,
    // A terminal that reports no width (0: some pseudo-terminals) counts as 100 columns.
    private readonly columns: () => number = () => (process.stderr as { columns?: number }).columns || 100,
  ) {}

  /** Replaces the status (cut to the terminal's width so it never wraps). */
  set(text: string): void {
    this.text = text.slice(0, Math.max(10, this.columns() - 1));
    this.term.write(`\r\u001b[2K${this.text}`);
  }

  /** Writes a whole line to `to` above the status. */
  line(to: Stream, text: string): void {
    if (this.text === '') {
      to.write(text);
      return;
    }
    this.term.write('\r\u001b[2K');
    to.write(text);
    this.term.write(this.text);
  }

  /** Leaves the last status as an ordinary line (the run's final progress stays on screen). */
  end(): void {
    if (this.text === '') return;
    this.term.write('\n');
    this.text = '';
  }
}
