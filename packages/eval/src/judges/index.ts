// @mtlface/eval/judges: independent real-world networks (face-api.js's, on its bundled weights) that judge
// ageing and identity, and label ages and genders.
export * from './age-gender-net.js';
export * from './face-recognition-net.js';
export * from './labeller.js';
export * from './face-api-judge.js';
