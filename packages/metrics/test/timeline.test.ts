import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mergeTimeline, rankTimelineFile, TimelineRecorder } from '@mtlface/metrics';

test('mergeTimeline joins every rank file into one Chrome trace, rebased and sorted', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mtl-tl-'));
  try {
    const file = join(dir, 'timeline.json');
    const r0 = new TimelineRecorder(file, 0);
    const r1 = new TimelineRecorder(file, 1);
    const t = Date.now() * 1000;
    r1.span('compute', 'compute', 0.002, undefined, t + 500);
    r0.span('collective', 'allreduce', 0.001, { bytes: 8 }, t + 100);
    r0.span('step', 'step 1', 0.004, undefined, t);
    r0.flush();
    r1.flush();
    // A restarted worker writes its track names again; a killed one may leave a torn line.
    new TimelineRecorder(file, 1).flush();
    appendFileSync(rankTimelineFile(file, 1), '{"name":"compute","ph":"X","ts":1');
    await mergeTimeline(file);
    const trace = JSON.parse(readFileSync(file, 'utf8'));
    const spans = trace.traceEvents.filter((e: { ph: string }) => e.ph === 'X');
    assert.deepEqual(
      spans.map((e: { name: string; pid: number; ts: number; dur: number }) => [e.name, e.pid, e.ts, e.dur]),
      [
        ['step 1', 0, 0, 4000],
        ['allreduce', 0, 100, 1000],
        ['compute', 1, 500, 2000],
      ],
    );
    const names = trace.traceEvents.filter((e: { name: string }) => e.name === 'process_name');
    assert.deepEqual(names.map((e: { pid: number }) => e.pid).sort(), [0, 1], 'one track name per rank');
    assert.equal(trace.otherData.epochOriginUs, t);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('mergeTimeline without rank files writes nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mtl-tl-'));
  try {
    await mergeTimeline(join(dir, 'none.json'));
    await mergeTimeline(join(dir, 'missing-dir', 'none.json'));
    assert.equal(existsSync(join(dir, 'none.json')), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a first-attempt recorder starts its rank file afresh; a restarted one appends', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mtl-tl-'));
  try {
    const file = join(dir, 't.json');
    const lines = () => readFileSync(rankTimelineFile(file, 0), 'utf8').trim().split('\n').length;
    const a = new TimelineRecorder(file, 0, { truncate: true });
    a.span('compute', 'compute', 0.001);
    a.flush();
    const once = lines();
    new TimelineRecorder(file, 0).flush();
    assert.ok(lines() > once, 'appended');
    new TimelineRecorder(file, 0, { truncate: true }).flush();
    assert.equal(lines(), once - 1, 'afresh: only the track names');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
