// What the editor edits, and the job it asks for: one video with a spotlight or a framing crop, or a
// reel of clips each with its own. Coordinates are fractions of the frame, times seconds of the source.

export class SpecProblem extends Error {}

export const OUTPUT_SIZES = [
  { width: 1080, height: 1920, label: 'Portrait 9:16 (1080 × 1920)' },
  { width: 720, height: 1280, label: 'Portrait 9:16 (720 × 1280)' },
  { width: 1080, height: 1350, label: 'Portrait 4:5 (1080 × 1350)' },
  { width: 1080, height: 1080, label: 'Square (1080 × 1080)' },
];

// What each model costs in render time, relative to the lightest one (model-only speed of each, measured
// side by side with bench/upscale_stage.py; README "Measured").
export const UPSCALE_MODELS = {
  none: { label: 'None (resize only)', note: 'Fastest: the crop is only resized; no model runs.' },
  'realesr-animevideov3': {
    label: 'Real-ESRGAN anime video v3', note: 'Fast: the lightest model; suits clean game and anime footage.',
  },
  'realesrgan-x4plus': {
    label: 'Real-ESRGAN x4plus (slowest)', note: 'Slowest: about 50 times the upscaling time of anime video v3.',
  },
};

export const EFFECTS = { overlay: 'Spotlight', framing: 'Framing', none: 'No effect' };

export function newRegion(t = 0, { x = 0.5, y = 0.5 } = {}) {
  return { keyframes: [{ t, x, y, rx: 0.12, ry: 0.2, easing: 'linear' }], dim: 0.6, feather: 0.02 };
}

/** The effects one video (or clip) can have; the framing crop gets its keyframe once the frame size is known. */
export function newEffects() {
  return {
    overlay: { regions: [newRegion()] },
    framing: { keyframes: [], output_width: 1080, output_height: 1920, upscale_model: 'realesr-animevideov3' },
  };
}

export function newProject() {
  return { type: 'overlay', single: { key: '', ...newEffects() }, clips: [] };
}

export function newClip(key, start_s, end_s = null, effect = 'overlay') {
  return { key, start_s, end_s, title: '', effect, ...newEffects() };
}

/** Seconds of the reel: each clip from its in point to its out point (or its video's end). */
export function reelLength(clips, durationOf) {
  return clips.reduce((sum, c) => sum + Math.max(0, (c.end_s ?? durationOf(c.key) ?? c.start_s) - c.start_s), 0);
}

const r6 = (v) => Math.round(v * 1e6) / 1e6;

function overlayParams(overlay, where) {
  if (!overlay.regions.length) throw new SpecProblem(`${where}Add a spotlight region.`);
  return {
    highlight_regions: overlay.regions.map((r) => ({
      keyframes: r.keyframes.map((k) => ({
        t: k.t, x: r6(k.x), y: r6(k.y), rx: Math.max(r6(k.rx), 1e-6), ry: Math.max(r6(k.ry), 1e-6), easing: k.easing,
      })),
      dim: r6(r.dim),
      feather: r6(r.feather),
    })),
  };
}

function framingParams(framing, where) {
  if (!framing.keyframes.length) throw new SpecProblem(`${where}The crop is not placed yet: load the video first.`);
  const { output_width: width, output_height: height } = framing;
  for (const side of [width, height]) {
    if (!Number.isInteger(side) || side < 16 || side > 3840 || side % 2) {
      throw new SpecProblem(`${where}The output width and height must be even numbers from 16 to 3840.`);
    }
  }
  const crop_keyframes = framing.keyframes.map((k) => {
    const w = r6(k.w);
    const h = r6(k.h);
    return { t: k.t, x: Math.min(r6(k.x), r6(1 - w)), y: Math.min(r6(k.y), r6(1 - h)), w, h, easing: k.easing };
  });
  return { crop_keyframes, output_width: width, output_height: height, upscale_model: framing.upscale_model };
}

function clipSpec(clip, i) {
  const where = `Clip ${i + 1}: `;
  if (!clip.key) throw new SpecProblem(`${where}Choose its video.`);
  const spec = { input_video_key: clip.key, start_s: r6(clip.start_s) };
  if (clip.end_s != null) {
    if (!(clip.end_s > clip.start_s)) throw new SpecProblem(`${where}The out point must be after the in point.`);
    spec.end_s = r6(clip.end_s);
  }
  if (clip.title.trim()) spec.title = clip.title.trim();
  if (clip.effect === 'overlay') spec.overlay = overlayParams(clip.overlay, where);
  if (clip.effect === 'framing') spec.framing = framingParams(clip.framing, where);
  return spec;
}

/** The job spec (POST /api/jobs) the project describes; SpecProblem says what is missing. */
export function specOf(project) {
  if (project.type === 'multi_clip') {
    if (!project.clips.length) throw new SpecProblem('Add at least one clip (set its in and out points with the playhead).');
    return { type: 'multi_clip', params: { clips: project.clips.map(clipSpec) } };
  }
  const { single } = project;
  if (!single.key) throw new SpecProblem('Upload a video first.');
  const params = project.type === 'overlay' ? overlayParams(single.overlay, '') : framingParams(single.framing, '');
  return { type: project.type, input_video_key: single.key, params };
}
