// Per-frame values from keyframes, exactly as the GPU worker computes them
// (gpu-worker/gpu_worker/keyframes.py): each keyframe's `easing` shapes the way to the next one.

export const EASINGS = {
  linear: (u) => u,
  ease_in: (u) => u * u,
  ease_out: (u) => 1 - (1 - u) * (1 - u),
  ease_in_out: (u) => 0.5 - 0.5 * Math.cos(Math.PI * u),
  hold: () => 0,
};

export const EASING_NAMES = {
  linear: 'Linear', ease_in_out: 'Ease in-out', ease_in: 'Ease in', ease_out: 'Ease out', hold: 'Hold',
};

/** Index of the last keyframe at or before t (-1 when t is before the first): Python's bisect_right - 1. */
function lastAtOrBefore(keyframes, t) {
  let lo = 0;
  let hi = keyframes.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (t < keyframes[mid].t) hi = mid; else lo = mid + 1;
  }
  return lo - 1;
}

/** Values of `fields` at time t. Before the first keyframe the first one holds, after the last the last
 * one holds. `keyframes` are objects with `t`, `easing` and the fields, sorted by t. */
export function interpolate(keyframes, t, fields) {
  const i = lastAtOrBefore(keyframes, t);
  const pick = (k) => Object.fromEntries(fields.map((f) => [f, k[f]]));
  if (i < 0) return pick(keyframes[0]);
  if (i >= keyframes.length - 1) return pick(keyframes[keyframes.length - 1]);
  const a = keyframes[i];
  const b = keyframes[i + 1];
  const u = EASINGS[a.easing || 'linear']((t - a.t) / (b.t - a.t));
  return Object.fromEntries(fields.map((f) => [f, a[f] + (b[f] - a[f]) * u]));
}
