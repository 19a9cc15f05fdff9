// @mtlface/eval/align: face detection, five landmarks and similarity alignment to the insightface template.
export * from './similarity-transform.js';
export * from './tiny-face-detector.js';
export * from './landmarks68.js';
export * from './align.js';
export * from './merge-detections.js';
export { faceApiModelDir, loadManifestWeights } from './weights.js';
export * from './from-folder.js';
