import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTrainProgress, fmtEta, PROGRESS_MARKER } from '../src/train/progress.js';

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

test('under mtl-launch on a terminal: marked status lines, at most one per 200 ms, the last always', () => {
  const written: string[] = [];
  const logged: string[] = [];
  const p = createTrainProgress({
    start: 0,
    end: 50,
    logInterval: 10,
    tty: 'launcher',
    log: (l) => logged.push(l),
    write: (t) => written.push(t),
  });
  const t0 = performance.now();
  for (let it = 1; it <= 50; it++) p.update(it, { losses: { fr_id: 1.5 }, imagesPerSec: 12 });
  const elapsedMs = performance.now() - t0;
  p.stop();
  assert.deepEqual(logged, [], 'no plain lines: the launcher redraws instead');
  assert.ok(written.length >= 2 && written.length <= 2 + Math.floor(elapsedMs / 200), String(written.length));
  for (const w of written)
    assert.match(
      w,
      new RegExp(
        `^${PROGRESS_MARKER}train it \\d+/50 \\(\\d+%\\) \\| eta \\S+ \\| 12\\.0 img/s \\| fr_id 1\\.50\\n$`,
      ),
    );
  assert.match(written[0]!, /train it 1\/50 \(2%\)/);
  assert.match(written.at(-1)!, /train it 50\/50 \(100%\)/);
});

test('piped: one plain line per log interval and at the end', () => {
  const logged: string[] = [];
  const p = createTrainProgress({
    start: 0,
    end: 25,
    logInterval: 10,
    tty: false,
    log: (l) => logged.push(l),
  });
  for (let it = 1; it <= 25; it++) p.update(it, { losses: { fr_id: 2 }, imagesPerSec: 3 });
  assert.deepEqual(
    logged.map((l) => /^it (\d+)\/25/.exec(l)?.[1]),
    ['10', '20', '25'],
  );
});
