import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import sharp from 'sharp';
import {
  downsample,
  movingMean,
  niceTicks,
  panelSvg,
  PANEL_HEIGHT,
  PANEL_WIDTH,
  SMALL_HEIGHT,
  SMALL_WIDTH,
} from '../src/plot/charts.js';
import { columnKind, planCharts, readLossLog } from '../src/plot/losses.js';
import { plotRunCurves } from '../src/train/plots.js';
import type { TrainConfig } from '@mtlface/train';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

/**
 * A joint run's losses.jsonl as the trainer writes it: one object per iteration, the release's
 * loss names first, the discriminator outputs, our other names, then the learning rates.
 */
function jointLog(iterations: number, extra: (it: number) => Record<string, number> = () => ({})): string {
  const lines: string[] = [];
  for (let it = 1; it <= iterations; it++) {
    const decay = Math.exp(-it / 60);
    lines.push(
      JSON.stringify({
        iter: it,
        id_loss: 20 * decay + 2,
        da_loss: 0.7 + 0.05 * Math.sin(it / 5),
        age_loss: 1.9 * decay + 0.3,
        fas_id_loss: 0.4 * decay,
        fas_age_loss: 1.5 * decay + 0.2,
        d1_logit: 0.5 + 0.1 * Math.cos(it / 7),
        g_logit: 0.4 - 0.1 * Math.cos(it / 7),
        fr_total: 22 * decay + 2.5,
        fas_d: 0.3,
        lr: it < 40 ? (0.05 * it) / 40 : it < 150 ? 0.05 : 0.005,
        g_lr: 1e-3,
        ...extra(it),
      }),
    );
  }
  return lines.join('\n') + '\n';
}

describe('chart pieces', () => {
  it('ticks at 1-2-5 steps covering the range', () => {
    assert.deepEqual(niceTicks(0, 1000, 5), [0, 200, 400, 600, 800, 1000]);
    assert.deepEqual(niceTicks(0.013, 0.05, 4), [0.02, 0.03, 0.04, 0.05]);
    assert.deepEqual(niceTicks(-3, 7, 2), [0, 5]);
  });

  it('downsamples by the mean of consecutive runs, keeping short series as they are', () => {
    const pts = Array.from({ length: 10 }, (_, i): [number, number] => [i + 1, i * 2]);
    assert.equal(downsample(pts, 20), pts);
    assert.deepEqual(downsample(pts, 5), [
      [1.5, 1],
      [3.5, 5],
      [5.5, 9],
      [7.5, 13],
      [9.5, 17],
    ]);
  });

  it('smooths with a trailing mean that starts from the first point', () => {
    const pts: Array<[number, number]> = [
      [1, 3],
      [2, 6],
      [3, 9],
      [4, 0],
    ];
    assert.deepEqual(movingMean(pts, 2), [
      [1, 3],
      [2, 4.5],
      [3, 7.5],
      [4, 4.5],
    ]);
  });

  it('maps the smallest value near the bottom and the largest near the top of the plot', () => {
    const svg = panelSvg({
      title: 't',
      yLabel: 'loss',
      series: [
        {
          name: 'a',
          points: [
            [1, 10],
            [2, 0],
            [3, 5],
          ],
        },
      ],
    });
    const coords = /points="([^"]+)"/
      .exec(svg)![1]!
      .split(' ')
      .map((p) => p.split(',').map(Number));
    const ys = coords.map((c) => c[1]!);
    assert.ok(ys[0]! < ys[2]! && ys[2]! < ys[1]!, `${ys}`);
    assert.ok(Math.abs(ys[2]! - (ys[0]! + ys[1]!) / 2) < 0.2, 'linear in y');
    assert.ok(coords[0]![0]! < coords[1]![0]! && coords[1]![0]! < coords[2]![0]!);
    assert.match(svg, />iteration</);
    assert.match(svg, />loss</);
  });

  it('sorts the columns of the trainer and the release onto their charts', () => {
    const kinds = (names: string[]) => names.map(columnKind);
    assert.deepEqual(kinds(['id_loss', 'da_loss', 'age_loss', 'fr_total']), ['fr', 'fr', 'fr', 'fr']);
    assert.deepEqual(
      kinds(['fas_id_loss', 'fas_age_loss', 'd1_logit', 'd3_logit', 'g_logit', 'fas_d', 'fas_g_gan']),
      ['fas', 'fas', 'fas', 'fas', 'fas', 'fas', 'fas'],
    );
    assert.deepEqual(kinds(['lr', 'g_lr', 'd_lr', 'loss_scale', 'img_s', 'val_synth_accuracy']), [
      'lr',
      'lr',
      'lr',
      'scale',
      'throughput',
      'validation',
    ]);
  });
});

describe('mtl-face plot', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mtl-plot-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads every iteration and skips a torn last line', () => {
    const file = join(dir, 'torn.jsonl');
    writeFileSync(file, jointLog(5) + '{"iter": 6, "id_lo');
    const cols = readLossLog(file);
    assert.deepEqual(
      cols.get('id_loss')!.map((p) => p[0]),
      [1, 2, 3, 4, 5],
    );
    const { charts, missing } = planCharts(cols);
    assert.deepEqual(
      charts.map((c) => c.file),
      ['losses.png', 'schedule.png'],
    );
    assert.deepEqual(missing, ['no loss scale', 'no img/s', 'no validation accuracy']);
  });

  it('draws the PNGs of a run directory and names what its file lacks', async () => {
    const run = join(dir, 'run');
    const scaled = join(dir, 'scaled');
    for (const d of [run, scaled]) spawnSync('mkdir', ['-p', d]);
    writeFileSync(join(run, 'losses.jsonl'), jointLog(300));
    const cli = (args: string[]) =>
      spawnSync(
        process.execPath,
        [
          '--conditions=mtl-source',
          '--import',
          import.meta.resolve('tsx'),
          join(REPO, 'workers/src/mtl-face.ts'),
          'plot',
          ...args,
        ],
        { encoding: 'utf8', timeout: 120_000 },
      );
    const r = cli([run]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stdout,
      /losses\.jsonl \(300 iterations\) has no loss scale, no img\/s, no validation accuracy: not plotted/,
    );
    // Nine losses (4 AIFR, 5 FAS) as small multiples two to a row; the learning rates on one panel.
    for (const [file, width, height] of [
      ['losses.png', 2 * SMALL_WIDTH, 5 * SMALL_HEIGHT],
      ['schedule.png', PANEL_WIDTH, PANEL_HEIGHT],
    ] as const) {
      const meta = await sharp(join(run, 'plots', file)).metadata();
      assert.deepEqual([meta.format, meta.width, meta.height], ['png', width, height], file);
    }
    // With a loss scale, throughput and validation in the file, every chart is drawn.
    writeFileSync(
      join(scaled, 'losses.jsonl'),
      jointLog(300, (it) => ({
        loss_scale: 2 ** (16 - Math.floor(it / 100)),
        img_s: 30 + 5 * Math.sin(it / 10),
        ...(it % 50 === 0 ? { val_accuracy: 0.5 + it / 1500 } : {}),
      })),
    );
    const s = cli([join(scaled, 'losses.jsonl'), '--out', join(scaled, 'png')]);
    assert.equal(s.status, 0, s.stderr);
    assert.doesNotMatch(s.stdout, /not plotted/);
    for (const f of ['losses.png', 'schedule.png', 'throughput.png', 'validation.png'])
      assert.ok(existsSync(join(scaled, 'png', f)), f);
    assert.equal((await sharp(join(scaled, 'png', 'schedule.png')).metadata()).height, 2 * PANEL_HEIGHT);
    const missing = cli([join(dir, 'nowhere')]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /^mtl-face plot: .*nowhere does not exist/);
  });

  it('at the end of a run, draws next to the losses file, and only warns when it cannot', async () => {
    const ck = join(dir, 'ck');
    spawnSync('mkdir', ['-p', ck]);
    const cfg = (losses: string | null) =>
      ({ checkpoint_dir: ck, losses_file: losses }) as unknown as TrainConfig;
    const lines: string[] = [];
    await plotRunCurves(cfg(null), (l) => lines.push(l));
    assert.deepEqual(lines, [], 'no losses file, nothing to draw, nothing said');
    writeFileSync(join(ck, 'losses.jsonl'), jointLog(20));
    await plotRunCurves(cfg(null), (l) => lines.push(l));
    assert.match(
      lines[0]!,
      /^curves: .*ck\/plots\/losses\.png, .*schedule\.png \(no loss scale, no img\/s, no validation accuracy in /,
    );
    writeFileSync(join(ck, 'empty.jsonl'), 'not json\n');
    await plotRunCurves(cfg(join(ck, 'empty.jsonl')), (l) => lines.push(l));
    assert.match(lines[1]!, /^warning: cannot draw the curves of .*empty\.jsonl: .*no iteration records/);
  });
});
