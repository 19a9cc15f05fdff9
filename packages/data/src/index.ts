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
export { decodeResize, toFloatRgb, type RawImage } from './image.js';
export { ImagePool, type ImagePoolOptions, type DecodedImages } from './image-pool.js';
export { BatchLoader, BadImageError, type BatchLoaderOptions } from './loader.js';
