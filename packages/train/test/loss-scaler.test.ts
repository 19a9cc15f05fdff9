import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LossScaler } from '../src/loss-scaler.js';

test('GradScaler dynamics: 65536, doubles after 2000 clean steps, halves and skips on overflow', () => {
  const s = new LossScaler();
  assert.equal(s.scale, 65536);
  for (let i = 0; i < 1999; i++) assert.equal(s.update(false), false);
  assert.equal(s.scale, 65536);
  s.update(false);
  assert.equal(s.scale, 131072);
  assert.equal(s.update(true), true);
  assert.equal(s.scale, 65536);
  for (let i = 0; i < 1999; i++) s.update(false);
  assert.equal(s.update(true), true);
  assert.equal(s.scale, 32768, 'an overflow resets the clean-step count');
});

test('scaler matches an independent model of GradScaler on random overflow sequences', () => {
  fc.assert(
    fc.property(
      fc.array(fc.boolean(), { maxLength: 300 }),
      fc.integer({ min: 1, max: 20 }),
      (flags, interval) => {
        const s = new LossScaler({ init: 1024, growthInterval: interval });
        let scale = 1024;
        let tracker = 0;
        for (const inf of flags) {
          assert.equal(s.update(inf), inf);
          if (inf) {
            scale *= 0.5;
            tracker = 0;
          } else if (++tracker === interval) {
            scale *= 2;
            tracker = 0;
          }
          assert.equal(s.scale, scale);
        }
        const restored = new LossScaler({ growthInterval: interval });
        restored.load(s.state());
        assert.deepEqual(restored.state(), s.state());
      },
    ),
  );
});

test('disabled scaler has scale 1 and still reports overflow as a skip', () => {
  const s = new LossScaler({ enabled: false });
  assert.equal(s.scale, 1);
  assert.equal(s.update(true), true);
  assert.equal(s.scale, 1);
  assert.throws(() => s.load({ scale: -1, growthTracker: 0 }), /invalid state/);
});
