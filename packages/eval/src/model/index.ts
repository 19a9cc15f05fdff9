// @mtlface/eval/model: the evaluation parts that run a model (tfjs). The pure protocols are in '@mtlface/eval'.
export * from './face-model.js';
export * from './images.js';
export * from './embed.js';
export * from './pairs.js';
export * from './fas.js';
export * from './validate.js';
export * from './load-pairs.js';
