import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fmtEta } from '../src/train/progress.js';

test('ETA reads as minutes and two-digit seconds, never 60 seconds', () => {
  for (let t = 0; t < 7200; t += 0.37) {
    const text = fmtEta(t);
    const m = /^(?:(\d+)m(\d\d)s|(\d+)s)$/.exec(text);
    assert.ok(m, text);
    const seconds = m[3] !== undefined ? Number(m[3]) : Number(m[1]) * 60 + Number(m[2]);
    assert.ok(Number(m[2] ?? m[3]) < 60, `${t} → ${text}`);
    assert.equal(seconds, Math.round(t), `${t} → ${text}`);
  }
  assert.equal(fmtEta(179.6), '3m00s');
  assert.equal(fmtEta(Number.NaN), '?');
});
