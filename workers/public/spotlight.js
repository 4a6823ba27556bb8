// The spotlight overlay on an RGBA image, as the GPU worker draws it
// (gpu-worker/gpu_worker/processors/overlay.py is the definition; this is a port of its maths).
//
// Per pixel, region r gives a gain of 1 inside its ellipse, falling to 1 - dim_r over a soft edge just
// outside it: `feather` x the frame's shorter side wide on a circle, uniform in the ellipse's own radius.
// The brightest region wins, so the background is dimmed by the smallest `dim`. Dimming scales a value's
// distance from black. The worker dims I420 frames (luma per pixel, chroma per 2x2 block) where it can;
// here the browser has RGB, so chroma follows the luma gain: the two differ only inside the soft edge.

import { interpolate } from './keyframes.js';

export const FIELDS = ['x', 'y', 'rx', 'ry'];

/** Each region at time t, in pixels of a width x height frame; `band` is the soft edge in radii. */
export function ellipses(regions, t, width, height) {
  return regions.map((region) => {
    const k = interpolate(region.keyframes, t, FIELDS);
    const rx = Math.max(k.rx * width, 0.5);
    const ry = Math.max(k.ry * height, 0.5);
    const band = (region.feather * Math.min(width, height)) / Math.sqrt(rx * ry);
    return { cx: k.x * width, cy: k.y * height, rx, ry, band: Math.max(band, 1e-6), keep: 1 - region.dim };
  });
}

/** [x0, y0, x1, y1): the pixels the ellipses and their soft edges touch (the worker's _Plane.box, step 1). */
export function box(shapes, width, height) {
  const grow = shapes.map((e) => 1 + e.band);
  const x0 = Math.min(...shapes.map((e, i) => Math.floor(e.cx - e.rx * grow[i])));
  const y0 = Math.min(...shapes.map((e, i) => Math.floor(e.cy - e.ry * grow[i])));
  const x1 = Math.max(...shapes.map((e, i) => Math.ceil(e.cx + e.rx * grow[i]) + 1));
  const y1 = Math.max(...shapes.map((e, i) => Math.ceil(e.cy + e.ry * grow[i]) + 1));
  return [Math.max(x0, 0), Math.max(y0, 0), Math.min(x1, width), Math.min(y1, height)];
}

/** The gain of one region at pixel centre (px, py): keep + (1 - keep) * clip((1 + band - d) / band, 0, 1). */
export function regionGain(e, px, py) {
  const dx = (px - e.cx) / e.rx;
  const dy = (py - e.cy) / e.ry;
  const d = Math.sqrt(dx * dx + dy * dy);
  const slope = (1 - e.keep) / e.band;
  return Math.min(1, Math.max(e.keep, e.keep + slope * (1 + e.band) - slope * d));
}

/** Dim an ImageData (RGBA) in place with `regions` at time t. */
export function applySpotlight(image, regions, t) {
  if (!regions.length) return;
  const { width, height, data } = image;
  const shapes = ellipses(regions, t, width, height);
  const [x0, y0, x1, y1] = box(shapes, width, height);
  const keep = Math.max(...shapes.map((e) => e.keep));
  for (let y = 0; y < height; y += 1) {
    const inRows = y >= y0 && y < y1;
    for (let x = 0; x < width; x += 1) {
      let gain = keep;
      if (inRows && x >= x0 && x < x1) {
        gain = 0;
        for (const e of shapes) gain = Math.max(gain, regionGain(e, x + 0.5, y + 0.5));
      }
      const i = (y * width + x) * 4;
      data[i] = data[i] * gain;  // a Uint8ClampedArray rounds to the nearest, as the worker does
      data[i + 1] = data[i + 1] * gain;
      data[i + 2] = data[i + 2] * gain;
    }
  }
}
