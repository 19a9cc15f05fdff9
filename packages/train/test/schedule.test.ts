import { test } from 'node:test';
import assert from 'node:assert/strict';
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

test('a small schedule, step by step, against a table worked out by hand', () => {
  // lr 0.1, warm-up 4 (lr·step/4), then halved after each milestone passed (6, 8), floor 0.02.
  const s = { lr: 0.1, warmup: 4, milestones: [6, 8], gamma: 0.5, minLr: 0.02 };
  const table = [0.025, 0.05, 0.075, 0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025];
  table.forEach((want, i) => assert.ok(Math.abs(learningRate(i + 1, s) - want) < 1e-15, `step ${i + 1}`));
  // gamma 0.1: 0.01 after the first milestone, 0.001 after the second, held at the 0.02 floor.
  const g = { ...s, gamma: 0.1 };
  assert.deepEqual(
    [7, 8, 9].map((k) => learningRate(k, g)),
    [0.02, 0.02, 0.02],
  );
  // No warm-up: the full rate from the first step (the parity runs use --warmup 0).
  assert.equal(learningRate(1, { ...s, warmup: 0 }), 0.1);
  assert.equal(learningRate(7, { ...s, warmup: 0 }), 0.05);
});
