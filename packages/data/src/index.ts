export { ageGroup, isAgeGroupCount, AGE_GROUP_THRESHOLDS, type AgeGroupCount } from './age-groups.js';
export type { Batch, FasBatch } from './batch.js';
export { Rng, hash32, permutation } from './rng.js';
export { DistributedSampler, type DistributedSamplerOptions, type SamplerPosition } from './sampler.js';
export { FasTargetSampler, type FasTargets } from './fas-sampler.js';
export {
  AnnotationError,
  parseAnnotations,
  buildDataset,
  loadDataset,
  type AnnotationEntry,
  type Dataset,
} from './annotations.js';
export { decodeResize, toFloatRgb, loadImageInto, type RawImage } from './image.js';
export { decodeJpegRgba, isJpeg } from './jpeg-fast.js';
export { ImagePool, type ImagePoolOptions, type DecodedImages } from './image-pool.js';
export { BatchLoader, BadImageError, type BatchLoaderOptions } from './loader.js';
export {
  synthesize,
  BENCH64,
  synthImages,
  identityAges,
  testIdentities,
  crossAgePairs,
  MIN_POSITIVE_AGE_GAP,
  MAX_NEGATIVE_SKIN_TONE_GAP,
  type SynthOptions,
  type SynthResult,
  type SynthImage,
} from './synth/synthesize.js';
export { identityTraits, type IdentityTraits } from './synth/traits.js';
export { renderFaceSvg, drawNuisance, MIN_CUE_PX, type AgeCues, type Nuisance } from './synth/render.js';
export { datasetDifficulty, generatorDifficulty, type DifficultyStats } from './synth/difficulty.js';
export { createProgress, type Progress } from './progress.js';
export { readPickle, PickleError, type PickleValue } from './convert/pickle.js';
export { fromBin, type FromBinResult } from './convert/from-bin.js';
export { RecordReader, RecordIOError, parseImageRecord, readIndex, RECORDIO_MAGIC, type ImageRecord } from './convert/recordio.js';
export { fromRec, recImagePath, FROM_REC_STATE, FROM_REC_INCOMPLETE, MAX_REC_LABEL, type FromRecOptions, type FromRecResult } from './convert/from-rec.js';
export {
  listImageFolder,
  identityMapPath,
  formatIdentityMap,
  isImageName,
  IMAGE_EXTENSIONS,
  type FolderImage,
  type ImageFolderListing,
} from './convert/image-folder.js';
export {
  annotateImageFolder,
  readPublished,
  imageKey,
  formatAge,
  type AnnotateOptions,
  type AnnotateResult,
  type FaceLabel,
  type LabelEstimator,
  type LabelResult,
} from './convert/annotate.js';
