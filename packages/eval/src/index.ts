// @mtlface/eval: the evaluation protocols of spec §6 on plain arrays (no tfjs here). The parts that run the
// model live in the `@mtlface/eval/model` entry point.
export * from './similarity.js';
export * from './verification.js';
export * from './identification.js';
export * from './cross-age.js';
export * from './fas-quality.js';
export * from './pairs-file.js';
export * from './table.js';
