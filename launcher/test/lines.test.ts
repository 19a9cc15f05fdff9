import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { LineSplitter, TailBuffer } from '../src/lines.js';

function split(chunks: Buffer[], max?: number): string[] {
  const out: string[] = [];
  const s = new LineSplitter((l) => out.push(l), max);
  for (const c of chunks) s.push(c);
  s.end();
  return out;
}

function cut(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let prev = 0;
  for (const p of [...points, buf.length]) {
    chunks.push(buf.subarray(prev, p));
    prev = p;
  }
  return chunks;
}

describe('LineSplitter', () => {
  it('yields the same lines however the stream is chunked (multi-byte characters included)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: fc.constantFrom('a', 'é', '字', '😀', ' ', '\r') }), { maxLength: 20 }),
        fc.boolean(),
        fc.array(fc.nat(), { maxLength: 30 }),
        (lines, trailingNewline, cuts) => {
          const text = lines.join('\n') + (trailingNewline ? '\n' : '');
          // Reference: every newline-terminated line, then a non-empty unterminated rest; no CR.
          const parts = text.split('\n');
          const rest = parts.pop() ?? '';
          const expected = [...parts, ...(rest !== '' ? [rest] : [])].map((l) => l.replace(/\r$/, ''));
          assert.deepEqual(split(cut(Buffer.from(text), cuts)), expected);
        },
      ),
    );
  });

  it('cuts a runaway line into pieces of the maximum size', () => {
    assert.deepEqual(split([Buffer.from('abcdefgh'), Buffer.from('ij\nk')], 4), ['abcd', 'efgh', 'ij', 'k']);
  });
});

describe('TailBuffer', () => {
  it('keeps the last lines only', () => {
    const t = new TailBuffer(3);
    for (const l of ['1', '2', '3', '4', '5']) t.push(l);
    assert.deepEqual(t.get(), ['3', '4', '5']);
  });
});
