// Editing a list of keyframes ({t, easing, ...fields}, sorted by t, times strictly increasing, as the
// job schema requires). Each function changes the list in place and returns the index it touched.

/** Set `values` at time t: the keyframe within `tolerance` of t takes them, or a new one is inserted
 * (its easing taken from the keyframe before it). */
export function setAt(keyframes, t, values, tolerance) {
  const near = indexAt(keyframes, t, tolerance);
  if (near >= 0) {
    Object.assign(keyframes[near], values);
    return near;
  }
  const i = keyframes.findIndex((k) => k.t > t);
  const at = i < 0 ? keyframes.length : i;
  const easing = keyframes[at - 1]?.easing || 'linear';
  keyframes.splice(at, 0, { t, ...values, easing });
  return at;
}

/** Move keyframe i to time t, kept at least `gap` from its neighbours (and at or after 0). */
export function moveTo(keyframes, i, t, gap) {
  const before = keyframes[i - 1];
  const after = keyframes[i + 1];
  let time = Math.max(t, before ? before.t + gap : 0);
  if (after) time = Math.min(time, after.t - gap);
  if (before && time <= before.t) return i;  // no room between its neighbours
  keyframes[i].t = time;
  return i;
}

/** Remove keyframe i unless it is the last one left (a region or crop always has one); whether it did. */
export function removeAt(keyframes, i) {
  if (keyframes.length <= 1 || i < 0 || i >= keyframes.length) return false;
  keyframes.splice(i, 1);
  return true;
}

/** The index of the keyframe within `tolerance` of t, or -1. */
export function indexAt(keyframes, t, tolerance) {
  return keyframes.findIndex((k) => Math.abs(k.t - t) <= tolerance);
}
