// The spotlight overlay, as the GPU worker draws it (gpu-worker/gpu_worker/processors/overlay.py is the
// definition; this is a port of its maths, plane by plane like the worker's).
//
// Per pixel, region r gives a gain of 1 inside its ellipse, falling to 1 - dim_r over a soft edge just
// outside it: `feather` x the frame's shorter side wide on a circle, uniform in the ellipse's own radius.
// The brightest region wins, so the background is dimmed by the smallest `dim`. Dimming scales a value's
// distance from black: RGB values from 0, or in I420 Y from 16 and U, V from 128 (a chroma sample takes
// the gain at its own centre). The worker dims I420 where it can, so the preview does too when the
// browser hands over the decoded I420 frame (out-of-gamut colours dim differently in RGB).

import { interpolate } from './keyframes.js';

export const FIELDS = ['x', 'y', 'rx', 'ry'];

/** A region's ellipse at time t: {x, y, rx, ry}, fractions of the frame. */
export function ellipseAt(region, t) {
  return interpolate(region.keyframes, t, FIELDS);
}

/** Each region at time t, in pixels of a width x height frame; `band` is the soft edge in radii. */
export function ellipses(regions, t, width, height) {
  return regions.map((region) => {
    const k = ellipseAt(region, t);
    const rx = Math.max(k.rx * width, 0.5);
    const ry = Math.max(k.ry * height, 0.5);
    const band = (region.feather * Math.min(width, height)) / Math.sqrt(rx * ry);
    return { cx: k.x * width, cy: k.y * height, rx, ry, band: Math.max(band, 1e-6), keep: 1 - region.dim };
  });
}

/** [x0, y0, x1, y1): the samples of a plane (every `step`-th pixel) the ellipses and their soft edges touch. */
export function box(shapes, width, height, step) {
  const grow = shapes.map((e) => 1 + e.band);
  const x0 = Math.min(...shapes.map((e, i) => Math.floor((e.cx - e.rx * grow[i]) / step)));
  const y0 = Math.min(...shapes.map((e, i) => Math.floor((e.cy - e.ry * grow[i]) / step)));
  const x1 = Math.max(...shapes.map((e, i) => Math.ceil((e.cx + e.rx * grow[i]) / step) + 1));
  const y1 = Math.max(...shapes.map((e, i) => Math.ceil((e.cy + e.ry * grow[i]) / step) + 1));
  return [Math.max(x0, 0), Math.max(y0, 0), Math.min(x1, width), Math.min(y1, height)];
}

/** The gain of one region at (px, py), frame pixels: keep + (1 - keep) * clip((1 + band - d) / band, 0, 1). */
export function regionGain(e, px, py) {
  const dx = (px - e.cx) / e.rx;
  const dy = (py - e.cy) / e.ry;
  const d = Math.sqrt(dx * dx + dy * dy);
  const slope = (1 - e.keep) / e.band;
  return Math.min(1, Math.max(e.keep, e.keep + slope * (1 + e.band) - slope * d));
}

/** Dim planes that share one grid of samples ({width, height, step}) in place. A plane is
 * {data, offset, stride, pixelStride}: its sample (i, j) is data[offset + j * stride + i * pixelStride]. */
function dim(planes, grid, shapes, black) {
  const { width, height, step } = grid;
  const [x0, y0, x1, y1] = box(shapes, width, height, step);
  const keep = Math.max(...shapes.map((e) => e.keep));
  const gains = new Float64Array(width).fill(keep);
  for (let j = 0; j < height; j += 1) {
    const inBox = j >= y0 && j < y1;
    if (inBox) {
      for (let i = x0; i < x1; i += 1) {
        let gain = 0;
        for (const e of shapes) gain = Math.max(gain, regionGain(e, (i + 0.5) * step, (j + 0.5) * step));
        gains[i] = gain;
      }
    }
    for (const { data, offset, stride, pixelStride } of planes) {
      const row = offset + j * stride;
      for (let i = 0; i < width; i += 1) {
        const at = row + i * pixelStride;
        data[at] = Math.floor(black + (data[at] - black) * gains[i] + 0.5);
      }
    }
    if (inBox) gains.fill(keep, x0, x1);
  }
}

/** The spotlight on an RGBA image ({width, height, data}), in place. */
export function spotlightRgba(image, regions, t) {
  if (!regions.length) return;
  const { width, height, data } = image;
  const planes = [0, 1, 2].map((offset) => ({ data, offset, stride: width * 4, pixelStride: 4 }));
  dim(planes, { width, height, step: 1 }, ellipses(regions, t, width, height), 0);
}

/** The spotlight on an I420 (or NV12) frame of even size, in place: {y, u, v} planes as in dim(). */
export function spotlightI420({ y, u, v }, width, height, regions, t) {
  if (!regions.length) return;
  const shapes = ellipses(regions, t, width, height);
  dim([y], { width, height, step: 1 }, shapes, 16);
  dim([u, v], { width: width / 2, height: height / 2, step: 2 }, shapes, 128);
}
