// Runs the page's editor maths (workers/public/*.js) on cases from stdin (JSON) and prints the results,
// so tests/unit/test_editor_maths.py can hold them against the GPU worker's Python.
import { readFileSync } from 'node:fs';

const pub = new URL('../../workers/public/', import.meta.url);
const { interpolate } = await import(new URL('keyframes.js', pub));
const { spotlightRgba, spotlightI420 } = await import(new URL('spotlight.js', pub));
const { sourceRect, fitCrop, resizeCrop } = await import(new URL('framing.js', pub));
const { setAt, moveTo, removeAt } = await import(new URL('tracks.js', pub));
const { specOf, newProject, newClip, newRegion, reelLength, SpecProblem } = await import(new URL('project.js', pub));

const ops = {
  interpolate: ({ keyframes, times, fields }) => times.map((t) => interpolate(keyframes, t, fields)),
  spotlight: ({ width, height, rgb, regions, t }) => {
    const data = new Uint8ClampedArray(width * height * 4);
    for (let i = 0; i < width * height; i += 1) data.set([...rgb.slice(3 * i, 3 * i + 3), 255], 4 * i);
    spotlightRgba({ width, height, data }, regions, t);
    return [...data].filter((_, i) => i % 4 !== 3);
  },
  spotlightI420: ({ width, height, i420, regions, t }) => {
    const data = Uint8Array.from(i420);
    const plane = (offset, stride) => ({ data, offset, stride, pixelStride: 1 });
    const quarter = (width * height) / 4;
    spotlightI420({ y: plane(0, width), u: plane(width * height, width / 2), v: plane(width * height + quarter, width / 2) },
      width, height, regions, t);
    return [...data];
  },
  sourceRect: ({ crops, width, height }) => crops.map((c) => sourceRect(c, width, height)),
  fitCrop: ({ crops, aspect, width, height }) => crops.map((c) => fitCrop(c, aspect, width, height)),
  resizeCrop: ({ crops, w, aspect, width, height }) => crops.map((c) => resizeCrop(c, w, aspect, width, height)),
  tracks: () => {
    const kfs = [{ t: 0, x: 0, easing: 'ease_in' }];
    const log = [];
    log.push(setAt(kfs, 1, { x: 1 }, 0.01));       // inserted after, easing inherited
    log.push(setAt(kfs, 1.004, { x: 2 }, 0.01));   // within tolerance: updates
    log.push(setAt(kfs, 0.5, { x: 5 }, 0.01));     // inserted between
    log.push(moveTo(kfs, 1, 5, 0.1));              // clamped before the next one
    const moved = kfs.map((k) => ({ ...k }));
    log.push(removeAt(kfs, 0), removeAt(kfs, 0), removeAt(kfs, 0));  // the last one stays
    return { log, moved, kfs };
  },
  specs: () => {
    const p = newProject();
    p.single.key = 'videos/raw/u/a/clip.mp4';
    p.single.overlay.regions.push(newRegion(1, { x: 0.2, y: 0.3 }));
    p.single.overlay.regions[0].keyframes.push({ t: 1 / 30, x: 0.9, y: 0.95, rx: 0.5, ry: 0.01, easing: 'hold' });
    p.single.framing.keyframes.push({ t: 0, x: 1 - 0.3164, y: 0, w: 0.3164, h: 1, easing: 'linear' });
    const overlay = specOf(p);
    p.type = 'framing';
    const framing = specOf(p);
    p.type = 'multi_clip';
    const problems = [];
    try { specOf(p); } catch (e) { problems.push(e instanceof SpecProblem && e.message); }
    p.clips.push(newClip(p.single.key, 0.5, 1.5), newClip('videos/raw/u/b/other.mp4', 1, null, 'framing'));
    p.clips[1].title = ' Second ';
    try { specOf(p); } catch (e) { problems.push(e instanceof SpecProblem && e.message); }
    p.clips[1].framing.keyframes.push({ t: 0, x: 0, y: 0, w: 0.5, h: 1, easing: 'linear' });
    const reel = specOf(p);
    const length = reelLength(p.clips, (key) => ({ 'videos/raw/u/b/other.mp4': 3 })[key]);
    return { overlay, framing, reel, problems, length };
  },
};

const { op, ...args } = JSON.parse(readFileSync(0, 'utf8'));
process.stdout.write(JSON.stringify(ops[op](args)));
