import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { learningRate } from '../src/schedule.js';

const recipe = { lr: 0.1, warmup: 1000, milestones: [20000, 23000], gamma: 0.1, minLr: 1e-4 };

test('release schedule at its landmarks', () => {
  assert.ok(Math.abs(learningRate(1, recipe) - 1e-4) < 1e-18);
  assert.equal(learningRate(500, recipe), 0.05);
  assert.equal(learningRate(1000, recipe), 0.1);
  assert.equal(learningRate(1001, recipe), 0.1);
  assert.equal(learningRate(20000, recipe), 0.1);
  assert.ok(Math.abs(learningRate(20001, recipe) - 0.01) < 1e-15);
  assert.ok(Math.abs(learningRate(23001, recipe) - 0.001) < 1e-15);
  assert.equal(learningRate(36000, { ...recipe, milestones: [10, 20, 30, 40] }), 1e-4, 'floor');
  assert.throws(() => learningRate(0, recipe), /step must be an integer ≥ 1/);
});

test('schedule equals the release formula for any step', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 40000 }), fc.integer({ min: 0, max: 3000 }), (step, warmup) => {
      const s = { ...recipe, warmup };
      const ref =
        step <= warmup
          ? (step * s.lr) / warmup
          : s.lr * s.gamma ** s.milestones.filter((m) => m < step).length;
      assert.equal(learningRate(step, s), Math.max(1e-4, ref));
    }),
  );
});
