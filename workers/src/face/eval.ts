// `mtl-face eval`: the evaluation protocols of spec §6 on a checkpoint — verification on pairs lists (10-fold,
// TAR@FAR, age-gap buckets), identification (gallery/probe or FG-NET leave-one-out) and FAS quality.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { initBackend } from '@mtlface/backend';
import {
  ageGroup,
  isAgeGroupCount,
  parseAnnotations,
  type AgeGroupCount,
  type AnnotationEntry,
} from '@mtlface/data';
import { formatTable, identify, leaveOneOut, pct, type IdentificationResult } from '@mtlface/eval';
import {
  embedImages,
  evaluateFas,
  evaluatePairs,
  loadPairsSet,
  type FasReport,
  type GroupClassifier,
  type PairsReport,
} from '@mtlface/eval/model';
import type { MatcherPairs } from '@mtlface/eval/judges';
import { createAligner, loadFaceModel, readFaces, type Aligner, type LoadedFaceModel } from './face-model.js';
import { reportErrors, backendOption } from './cli.js';

interface EvalOptions {
  checkpoint: string;
  pairs: string[];
  identification?: string;
  gallery?: string;
  ranks: string;
  fas?: string;
  estimator?: string;
  threshold?: string;
  folds: string;
  far: string;
  roc?: boolean;
  align?: boolean;
  judge?: string;
  flip: boolean;
  batch: string;
  json?: boolean;
  backend: string;
}

const collect = (v: string, acc: string[]) => [...acc, v];
const numbers = (flag: string, s: string) =>
  s.split(',').map((x) => {
    const v = Number(x);
    if (!Number.isFinite(v)) throw new Error(`${flag}: "${x}" is not a number`);
    return v;
  });

export function register(program: Command): void {
  program
    .command('eval')
    .description('verification (10-fold), identification and FAS quality of a checkpoint')
    .requiredOption('--checkpoint <c>', '.safetensors weights, or a training checkpoint directory / sidecar')
    .option(
      '--pairs <file>',
      'pairs list "fileA fileB 1|-1" (repeatable); ages from all.txt beside it',
      collect,
      [],
    )
    .option(
      '--identification <list>',
      'annotation list (id file age gender): leave-one-out, or the probes with --gallery',
    )
    .option('--gallery <list>', 'gallery annotation list for --identification')
    .option('--ranks <k,...>', 'ranks to report', '1,5,10')
    .option('--fas <list>', 'annotation list of test faces to age to every group (FAS quality)')
    .option(
      '--estimator <c>',
      'a separately trained checkpoint whose age estimator also judges the aged faces',
    )
    .option(
      '--threshold <t>',
      'verification threshold for identity preservation (default: best on the first --pairs)',
    )
    .option('--folds <k>', 'verification folds', '10')
    .option('--far <f,...>', 'FARs for TAR@FAR', '1e-3')
    .option('--roc', 'include the ROC points in --json output')
    .option('--align', 'detect and align every face first')
    .option(
      '--judge <name>',
      "independent real-world judges beside the model's own: face-api (its age network for --fas, its " +
        '128-D matcher for --pairs and identity kept)',
    )
    .option('--no-flip', 'do not add the mirrored image embedding')
    .option('--batch <n>', 'images per forward', '32')
    .option('--json', 'one JSON object per evaluation')
    .addOption(backendOption())
    .action(reportErrors('eval', run));
}

function readList(file: string): { entries: AnnotationEntry[]; paths: string[] } {
  const entries = parseAnnotations(readFileSync(file, 'utf8'), file);
  if (entries.length === 0) throw new Error(`${file}: no images`);
  const root = resolve(dirname(file));
  return { entries, paths: entries.map((e) => join(root, e.file)) };
}

async function run(o: EvalOptions): Promise<void> {
  if (o.pairs.length === 0 && !o.identification && !o.fas) {
    throw new Error('nothing to evaluate: give --pairs, --identification and/or --fas');
  }
  if (o.gallery && !o.identification) throw new Error('--gallery needs --identification (the probes)');
  const folds = Number(o.folds);
  const batchSize = Number(o.batch);
  const fars = numbers('--far', o.far);
  const ranks = numbers('--ranks', o.ranks);
  if (o.judge !== undefined && o.judge !== 'face-api')
    throw new Error(`--judge: unknown judge "${o.judge}" (available: face-api)`);
  await initBackend({ backend: o.backend as 'auto', log: (l) => console.error(l) });
  const model = loadFaceModel(o.checkpoint);
  const aligner = o.align ? await createAligner() : undefined;
  const judges = o.judge ? new (await import('@mtlface/eval/judges')).FaceApiJudges() : undefined;
  try {
    let firstThreshold: number | undefined;
    for (const file of o.pairs) {
      const set = await loadPairsSet(file, {
        size: model.inputSize,
        ...(aligner
          ? { readImages: (paths: string[], size: number) => readFaces(paths, size, aligner) }
          : {}),
      });
      const r = evaluatePairs(model, set, { mirror: o.flip, batchSize, folds, fars });
      firstThreshold ??= r.verification.bestThreshold;
      printPairs(file, r, o);
      if (judges) {
        const { faceApiPairs } = await import('@mtlface/eval/judges');
        printJudgePairs(file, faceApiPairs(judges.recognition, set, { batchSize, folds }), o);
      }
    }
    if (o.identification) await runIdentification(o, model, aligner, ranks, batchSize);
    if (o.fas) {
      const threshold = o.threshold !== undefined ? Number(o.threshold) : firstThreshold;
      if (threshold === undefined || !Number.isFinite(threshold)) {
        throw new Error('--fas needs a verification threshold: give --threshold or a --pairs list');
      }
      const { entries, paths } = readList(o.fas);
      const sourceGroups = isAgeGroupCount(model.groups)
        ? entries.map((e) => ageGroup(e.age, model.groups as AgeGroupCount))
        : undefined;
      const faces = await readFaces(paths, model.inputSize, aligner);
      const estimators: GroupClassifier[] = [];
      if (model.groupLogits) estimators.push({ name: 'own', groupLogits: model.groupLogits });
      const judging = judges ? await import('@mtlface/eval/judges') : undefined;
      if (judges && judging) estimators.push(judging.faceApiAgeClassifier(judges.age, model.groups));
      const other = o.estimator ? loadFaceModel(o.estimator) : undefined;
      try {
        if (other) {
          if (!other.groupLogits) throw new Error(`${o.estimator}: no age estimator in this checkpoint`);
          estimators.push({ name: `separate (${o.estimator})`, groupLogits: other.groupLogits });
        }
        const r = evaluateFas(model, faces, {
          threshold,
          estimators,
          batchSize,
          mirror: o.flip,
          ...(sourceGroups ? { sourceGroups } : {}),
          ...(judges && judging ? { matchers: [judging.faceApiMatcher(judges.recognition, batchSize)] } : {}),
        });
        printFas(o.fas, r, o);
        if (judges && judging) {
          const ages = judges.age.predictFaces(faces, batchSize);
          const mae = entries.reduce((a, e, i) => a + Math.abs(ages[i]! - e.age), 0) / entries.length;
          if (o.json)
            console.log(
              JSON.stringify({ kind: 'judge-age', facesFile: o.fas, judge: 'face-api', meanAbsError: mae }),
            );
          else
            console.log(
              `face-api age on the ${entries.length} real faces: mean absolute error ${mae.toFixed(2)} years`,
            );
        }
      } finally {
        other?.dispose();
      }
    }
  } finally {
    judges?.dispose();
    aligner?.dispose();
    model.dispose();
  }
}

function printJudgePairs(file: string, r: MatcherPairs, o: EvalOptions): void {
  const v = r.verification;
  if (o.json) {
    const { predictions: _p, roc: _r, ...rest } = v;
    console.log(
      JSON.stringify({
        kind: 'judge-verification',
        judge: 'face-api',
        pairsFile: file,
        ...rest,
        tar: r.tar,
        far: r.far,
        accuracyAtOwnThreshold: r.accuracy,
        maxDistance: r.maxDistance,
      }),
    );
    return;
  }
  console.log(
    `face-api's matcher on ${file}: 10-fold ${pct(v.accuracyMean)} ± ${pct(v.accuracyStd)} (AUC ${v.auc.toFixed(4)}); at its own threshold (distance < ${r.maxDistance}): accuracy ${pct(r.accuracy)}, same pairs called same ${pct(r.tar)}, different pairs called same ${pct(r.far)}`,
  );
}

function printPairs(file: string, r: PairsReport, o: EvalOptions): void {
  const v = r.verification;
  if (o.json) {
    const { predictions: _p, roc, ...rest } = v;
    console.log(
      JSON.stringify({
        kind: 'verification',
        pairsFile: file,
        ...rest,
        ...(o.roc ? { roc } : {}),
        byAgeGap: r.byAgeGap ?? null,
      }),
    );
    return;
  }
  console.log(
    `\nverification: ${file} (${v.pairs} pairs: ${v.positives} same, ${v.negatives} different; ${v.folds} folds)`,
  );
  console.log(
    formatTable(
      ['accuracy', '± std', 'best threshold', 'AUC', ...v.tarAtFar.map((t) => `TAR@FAR=${t.far}`)],
      [
        [
          pct(v.accuracyMean),
          pct(v.accuracyStd),
          v.bestThreshold,
          v.auc,
          ...v.tarAtFar.map((t) => pct(t.tar) + (t.resolvable ? '' : ' (*)')),
        ],
      ],
    ),
  );
  if (v.tarAtFar.some((t) => !t.resolvable))
    console.log('(*) fewer different pairs than 1/FAR: the FAR is not resolved');
  if (r.byAgeGap) {
    console.log('\nby age gap (years), each pair decided with its own fold threshold:');
    console.log(
      formatTable(
        ['age gap', 'pairs', 'same', 'different', 'accuracy', 'TAR'],
        r.byAgeGap.map((b) => [b.label, b.pairs, b.positives, b.negatives, pct(b.accuracy), pct(b.tar)]),
      ),
    );
  }
}

async function runIdentification(
  o: EvalOptions,
  model: LoadedFaceModel,
  aligner: Aligner | undefined,
  ranks: number[],
  batchSize: number,
): Promise<void> {
  const embedList = async (file: string) => {
    const { entries, paths } = readList(file);
    const faces = await readFaces(paths, model.inputSize, aligner);
    return {
      embeddings: embedImages(model, faces, { mirror: o.flip, batchSize }),
      labels: entries.map((e) => e.id),
    };
  };
  const probes = await embedList(o.identification!);
  const r: IdentificationResult = o.gallery
    ? identify(await embedList(o.gallery), probes, ranks)
    : leaveOneOut(probes, ranks);
  const protocol = o.gallery
    ? `gallery ${o.gallery}, probes ${o.identification}`
    : `leave-one-out on ${o.identification}`;
  if (o.json) {
    const { ranks: _r, ...rest } = r;
    console.log(JSON.stringify({ kind: 'identification', protocol, ...rest }));
    return;
  }
  console.log(
    `\nidentification: ${protocol} (${r.probes} probes${r.skipped ? `, ${r.skipped} without a mate skipped` : ''})`,
  );
  console.log(
    formatTable(
      r.rankK.map((k) => `rank-${k.k}`),
      [r.rankK.map((k) => pct(k.accuracy))],
    ),
  );
}

function printFas(file: string, r: FasReport, o: EvalOptions): void {
  if (o.json) {
    console.log(JSON.stringify({ kind: 'fas', facesFile: file, ...r }));
    return;
  }
  console.log(
    `\nface age synthesis: ${r.faces} faces of ${file}, each aged to groups ${r.targets.join(', ')}`,
  );
  console.log('age-group accuracy of the generated faces:');
  console.log(
    formatTable(
      ['estimator', 'accuracy', 'mean |group error|', ...r.targets.map((g) => `g${g}`), 'on the real faces'],
      r.ageAccuracy.map((a) => [
        a.estimator,
        pct(a.accuracy),
        a.meanGroupError,
        ...a.perGroup.filter((p) => p.n > 0).map((p) => pct(p.accuracy)),
        a.real ? pct(a.real.accuracy) : '-',
      ]),
    ),
  );
  for (const m of r.matcherIdentity ?? []) {
    console.log(`identity kept under ${m.matcher} (same person when distance < ${m.maxDistance}):`);
    console.log(
      formatTable(
        ['target', 'pairs', 'mean distance', 'same person'],
        [
          ...m.perGroup.map((g) => [`g${g.group}`, g.n, g.meanDistance, pct(g.sameRate)] as const),
          ['all', m.pairs, m.meanDistance, pct(m.sameRate)] as const,
        ],
      ),
    );
  }
  const id = r.identity;
  console.log(`identity preservation (source vs aged, threshold ${id.threshold.toFixed(4)}):`);
  console.log(
    formatTable(
      ['target', 'pairs', 'mean cosine', 'verified'],
      [
        ...id.perGroup.map((g) => [`g${g.group}`, g.n, g.meanCosine, pct(g.verificationRate)] as const),
        ['all', id.pairs, id.meanCosine, pct(id.verificationRate)] as const,
      ],
    ),
  );
}
