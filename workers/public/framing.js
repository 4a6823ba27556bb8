// The framing crop, as the GPU worker takes it (gpu-worker/gpu_worker/processors/framing.py is the
// definition): an animated rectangle of the source, placed to a fraction of a pixel, resized to the output.

import { interpolate } from './keyframes.js';

export const FIELDS = ['x', 'y', 'w', 'h'];

/** The crop at time t: top-left (x, y) and size (w, h) as fractions of the source frame. */
export function cropAt(keyframes, t) {
  return interpolate(keyframes, t, FIELDS);
}

/** Python's round(): halves go to the even neighbour. */
function roundHalfEven(v) {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 ? r - 1 : r;
}

/** The source pixels the worker reads for `crop` (cv2.getRectSubPix: a whole-pixel size around the
 * crop's exact centre): { left, top, width, height } in source pixels. */
export function sourceRect(crop, srcW, srcH) {
  const width = Math.max(1, roundHalfEven(crop.w * srcW));
  const height = Math.max(1, roundHalfEven(crop.h * srcH));
  const cx = (crop.x + crop.w / 2) * srcW;
  const cy = (crop.y + crop.h / 2) * srcH;
  return { left: cx - width / 2, top: cy - height / 2, width, height };
}

/** Draw the cropped frame of `source` (a video or canvas of srcW x srcH) over the whole of ctx's canvas. */
export function drawCrop(ctx, source, crop, srcW, srcH) {
  const r = sourceRect(crop, srcW, srcH);
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(source, r.left, r.top, r.width, r.height, 0, 0, ctx.canvas.width, ctx.canvas.height);
}

/** w and h of a crop whose pixels have the output's aspect ratio (w/h as fractions of the source). */
function sizeFor(aspect, srcW, srcH, h) {
  let w = (h * srcH * aspect) / srcW;
  if (w > 1) { w = 1; h = (srcW / (srcH * aspect)); }
  return { w, h: Math.min(h, 1) };
}

/** Keep a crop inside the frame. */
export function clampCrop(c) {
  const w = Math.min(Math.max(c.w, 1e-3), 1);
  const h = Math.min(Math.max(c.h, 1e-3), 1);
  return { x: Math.min(Math.max(c.x, 0), 1 - w), y: Math.min(Math.max(c.y, 0), 1 - h), w, h };
}

/** The crop reshaped to `aspect` (output width / height), same centre and height where it fits. */
export function fitCrop(crop, aspect, srcW, srcH) {
  const { w, h } = sizeFor(aspect, srcW, srcH, crop.h);
  const cx = crop.x + crop.w / 2;
  const cy = crop.y + crop.h / 2;
  return clampCrop({ x: cx - w / 2, y: cy - h / 2, w, h });
}

/** The largest centred crop at `aspect`. */
export function defaultCrop(aspect, srcW, srcH) {
  return fitCrop({ x: 0, y: 0, w: 1, h: 1 }, aspect, srcW, srcH);
}

/** The crop resized from its top-left corner so its width is `w` (aspect kept, inside the frame). */
export function resizeCrop(crop, w, aspect, srcW, srcH) {
  const ratio = (srcW / srcH) / aspect;  // h / w, as fractions
  let width = Math.max(w, 0.02);
  width = Math.min(width, 1 - crop.x, (1 - crop.y) / ratio);
  return { x: crop.x, y: crop.y, w: width, h: width * ratio };
}
