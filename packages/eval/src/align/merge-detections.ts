// Merging the detections of one image found at several detector scales into one box per face.
import { iou, type FaceBox } from './tiny-face-detector.js';

/** The fraction of the smaller box that lies inside the larger one. */
export function containment(a: FaceBox, b: FaceBox): number {
  const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  if (w <= 0 || h <= 0) return 0;
  return (w * h) / Math.min(a.width * a.height, b.width * b.height);
}

/**
 * Greedy suppression over the detections of every scale, best score first: a box is dropped when it
 * overlaps a kept one by IoU > `iouMax`, or lies mostly (> `containedMax`) inside it or around it. The second
 * rule is what scales add: one scale frames the whole head, another the inner face, and their IoU can be
 * small although they are one face; two faces side by side never nest like that.
 */
export function mergeDetections(boxes: readonly FaceBox[], iouMax = 0.4, containedMax = 0.7): FaceBox[] {
  const kept: FaceBox[] = [];
  for (const b of [...boxes].sort((p, q) => q.score - p.score)) {
    if (kept.every((k) => iou(k, b) <= iouMax && containment(k, b) <= containedMax)) kept.push(b);
  }
  return kept;
}
