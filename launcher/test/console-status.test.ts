import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { PROGRESS_MARKER, StatusLine } from '../src/console-status.js';
import { WorkerLogs } from '../src/worker-logs.js';

const CLEAR = '\r\u001b[2K';

/** A terminal that records what it was sent, and the screen that results (\r + clear-line handled). */
function terminal() {
  const raw: string[] = [];
  return {
    raw,
    write: (t: string) => void raw.push(t),
    screen(): string[] {
      // Each screen line keeps what was written after its last clear.
      return raw
        .join('')
        .split('\n')
        .map((line) => line.split(CLEAR).at(-1)!);
    },
  };
}

describe('the console status line', () => {
  it("shows rank 0's progress as the redrawn last line with worker lines above it, and keeps the last one", async () => {
    const term = terminal();
    const status = new StatusLine(term, () => 200);
    // Both streams go to the one terminal, as on a console.
    const logs = new WorkerLogs({ rank: 0, console: { out: true, err: true }, status }, term, term);
    const out = new PassThrough();
    const err = new PassThrough();
    logs.attach(out, err);
    err.write(`${PROGRESS_MARKER}train it 1/3\n`);
    out.write('loaded 10 images\n');
    err.write(`${PROGRESS_MARKER}train it 2/3\n${PROGRESS_MARKER}train it 3/3\n`);
    err.write('warning: slow disk\n');
    out.end();
    err.end();
    await logs.drain(1000);
    status.end();
    assert.deepEqual(term.screen(), [
      '[rank0]: loaded 10 images',
      '[rank0]: warning: slow disk',
      '[rank0]: train it 3/3',
      '',
    ]);
    assert.ok(!term.raw.join('').includes(PROGRESS_MARKER), 'the marker never reaches the terminal');
    assert.deepEqual(
      logs.stderrTail.get(),
      ['warning: slow disk'],
      'progress is not kept for the failure summary',
    );
  });

  it('prints a progress line as an ordinary line when there is no terminal to redraw', async () => {
    const term = terminal();
    const logs = new WorkerLogs({ rank: 2, console: { out: true, err: true } }, term, term);
    const err = new PassThrough();
    logs.attach(null, err);
    err.end(`${PROGRESS_MARKER}train it 1/3\n`);
    await logs.drain(1000);
    assert.deepEqual(term.raw, ['[rank2]: train it 1/3\n']);
  });

  it('cuts the status to the terminal width so that it never wraps', () => {
    const term = terminal();
    new StatusLine(term, () => 20).set('x'.repeat(50));
    assert.deepEqual(term.screen(), ['x'.repeat(19)]);
  });
});
