// The visual export editor: the uploaded video on a stage with the export's live preview, a timeline of
// keyframes, and the panels for the spotlight, the framing crop and the reel's clips. It edits a project
// (project.js) and hands app.js the job spec; it reaches the API only through the `api` function given.

import { ClipList } from './clips.js';
import { FIELDS as CROP_FIELDS, cropAt, defaultCrop, fitCrop } from './framing.js';
import { EASING_NAMES, interpolate } from './keyframes.js';
import { Player } from './player.js';
import {
  EFFECTS, OUTPUT_SIZES, UPSCALE_MODELS, newClip, newProject, newRegion, reelLength, specOf,
} from './project.js';
import { MIN_RADIUS, Stage, clamp } from './stage.js';
import { FIELDS as ELLIPSE_FIELDS, ellipseAt } from './spotlight.js';
import { Timeline, formatTime } from './timeline.js';
import { indexAt, moveTo, removeAt, setAt } from './tracks.js';

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];
const FRAMED_PREVIEW_SIDE = 480;  // the cropped preview's longer side, in canvas pixels
const URL_REFRESH_MS = 60000;     // at most one new presigned GET a minute when the video stops loading

export class Editor {
  /** api: the page's API call; nameOf: a video key -> the name to show for it (its file's name). */
  constructor({ api, nameOf = (key) => key.split('/').pop() }) {
    this.api = api;
    this.nameOf = nameOf;
    this.project = newProject();
    this.clip = -1;      // the selected clip of the reel
    this.region = 0;     // the selected spotlight region
    this.keyframe = -1;  // the selected keyframe of the selected track
    this.key = '';       // the video on the stage
    this.durations = new Map();
    this.player = new Player($('#source'));
    this.stage = new Stage({ root: $('#stage'), canvas: $('#preview'), svg: $('#shapes') }, this.player);
    this.timeline = new Timeline({
      scrubber: $('#scrubber'), playhead: $('#playhead'), ranges: $('#ranges'), markers: $('#markers'),
    }, this.player);
    this.clipList = new ClipList($('#clips'));
    this.fillChoices();
    this.wire();
    this.render();
  }

  // ---------------------------------------------------------------- what is being edited

  get type() { return this.project.type; }

  /** The video, effect and effect settings the stage and panels edit now. */
  get target() {
    if (this.type === 'multi_clip') return this.project.clips[this.clip] || { key: this.key, effect: 'none' };
    return { ...this.project.single, effect: this.type };
  }

  get fields() { return this.target.effect === 'framing' ? CROP_FIELDS : ELLIPSE_FIELDS; }

  /** The keyframes the timeline shows: the selected region's, or the crop's. */
  get track() {
    const t = this.target;
    if (t.effect === 'overlay') return t.overlay.regions[this.region]?.keyframes || [];
    if (t.effect === 'framing') return t.framing.keyframes;
    return [];
  }

  get tolerance() { return 0.5 / this.player.fps; }

  get aspect() { const f = this.target.framing; return f.output_width / f.output_height; }

  spec() { return specOf(this.project); }

  // ---------------------------------------------------------------- loading a video

  async open(key) {
    if (!key || key === this.key) return;  // on the stage, or on its way there
    this.key = key;
    if (this.type !== 'multi_clip') this.project.single.key = key;
    const stage = $('#stage');
    stage.dataset.state = 'loading';
    this.say('Loading the video…');
    try {
      const { url } = await this.api('/api/videos/view-url', { method: 'POST', body: { key } });
      if (key !== this.key || !(await this.player.open(url))) return;  // another video was chosen meanwhile
    } catch (e) {
      if (key !== this.key) return;
      this.key = '';  // choosing it again tries again
      stage.dataset.state = 'error';
      this.say(`This video cannot be shown here: ${e.reason || e.message}.`, true);
      return;
    }
    if (key !== this.key) return;
    this.durations.set(key, this.player.length);
    this.stage.layout();
    this.fitCrops();
    stage.dataset.state = 'ready';
    this.say('');
    this.render();
  }

  async refreshUrl() {
    if (!this.player.ready || Date.now() - (this.urlRefreshedAt || 0) < URL_REFRESH_MS) return;
    this.urlRefreshedAt = Date.now();
    try {
      const { url } = await this.api('/api/videos/view-url', { method: 'POST', body: { key: this.key } });
      await this.player.reopen(url);
    } catch { /* the video stays as it is; the next error tries again */ }
  }

  /** Crops are shaped in the frame's pixels: every crop on the video on the stage gets its first keyframe if
   * it has none, and keeps the output's aspect (another video may have another shape). */
  fitCrops() {
    if (!this.player.ready) return;
    const { width, height } = this.player.size;
    const targets = [this.project.single, ...this.project.clips].filter((t) => t.key === this.key);
    for (const { framing: f } of targets) {
      const aspect = f.output_width / f.output_height;
      if (!f.keyframes.length) f.keyframes.push({ t: 0, ...defaultCrop(aspect, width, height), easing: 'linear' });
      for (const k of f.keyframes) Object.assign(k, fitCrop(k, aspect, width, height));
    }
  }

  // ---------------------------------------------------------------- wiring

  fillChoices() {
    const option = (value, text) => Object.assign(document.createElement('option'), { value, textContent: text });
    $('#output-size').replaceChildren(...OUTPUT_SIZES.map((s) => option(`${s.width}x${s.height}`, s.label)),
      option('custom', 'Custom'));
    $('#upscale-model').replaceChildren(...Object.entries(UPSCALE_MODELS).map(([v, m]) => option(v, m.label)));
    $('#kf-easing').replaceChildren(...Object.entries(EASING_NAMES).map(([v, name]) => option(v, name)));
    $('#clip-effect').replaceChildren(...Object.entries(EFFECTS).map(([v, name]) => option(v, name)));
  }

  wire() {
    const p = this.player;
    p.addEventListener('frame', () => this.onFrame());
    p.addEventListener('state', () => this.renderTransport());
    p.video.addEventListener('error', () => this.refreshUrl());
    for (const radio of $$('input[name="type"]')) radio.addEventListener('change', () => this.setType(radio.value));
    $('#input-video').addEventListener('change', (e) => this.chooseVideo(e.target.value));

    $('#play').addEventListener('click', () => this.togglePlay());
    $('#prev-frame').addEventListener('click', () => this.step(-1));
    $('#next-frame').addEventListener('click', () => this.step(1));
    $('#add-keyframe').addEventListener('click', () => this.addKeyframe());
    $('#time').addEventListener('change', async (e) => {
      if (!p.ready) return;
      await p.seekTime(Number(e.target.value) || 0);
      e.target.value = p.time.toFixed(3);  // the frame's own time, within the video
    });
    document.addEventListener('keydown', (e) => this.onKey(e));
    $('.workspace').addEventListener('keydown', (e) => {  // Enter in a field applies it; it does not start an export
      if (e.key !== 'Enter' || !e.target.matches('input')) return;
      e.preventDefault();
      e.target.dispatchEvent(new Event('change'));
    });

    this.stage.addEventListener('gesturestart', (e) => {
      p.pause();
      if (this.target.effect === 'overlay') { this.region = e.detail.index; this.selectAtPlayhead(); this.render(); }
    });
    this.stage.addEventListener('edit', (e) => this.edit(e.detail));
    this.stage.addEventListener('gestureend', () => {
      if (this.keyframe >= 0) this.say(`Keyframe ${this.keyframe + 1} at ${formatTime(this.track[this.keyframe].t)}.`);
    });

    this.timeline.addEventListener('select', (e) => this.selectKeyframe(e.detail.index));
    this.timeline.addEventListener('move', (e) => {
      this.keyframe = moveTo(this.track, e.detail.index, e.detail.t, 1 / p.fps);
      this.render();
    });

    $('#add-region').addEventListener('click', () => this.addRegion());
    $('#remove-region').addEventListener('click', () => this.removeRegion());
    $('#dim').addEventListener('input', (e) => this.setRegion({ dim: Number(e.target.value) }));
    $('#feather').addEventListener('input', (e) => this.setRegion({ feather: Number(e.target.value) }));

    $('#output-size').addEventListener('change', (e) => {
      if (e.target.value === 'custom') { this.renderPanels(); $('#output-width').focus(); return; }
      const [w, h] = e.target.value.split('x').map(Number);
      this.setOutputSize(w, h);
    });
    for (const id of ['#output-width', '#output-height']) {
      $(id).addEventListener('change', () => this.setOutputSize(Number($('#output-width').value), Number($('#output-height').value)));
    }
    $('#upscale-model').addEventListener('change', (e) => { this.target.framing.upscale_model = e.target.value; this.renderPanels(); });

    for (const input of $$('#keyframe-fields input[data-field]')) input.addEventListener('change', () => this.editKeyframe(input));
    $('#kf-easing').addEventListener('change', (e) => {
      if (this.track[this.keyframe]) { this.track[this.keyframe].easing = e.target.value; this.render(); }
    });
    $('#delete-keyframe').addEventListener('click', () => this.deleteKeyframe());

    $('#add-clip').addEventListener('click', () => this.addClip());
    $('#set-in').addEventListener('click', () => this.setIn());
    $('#set-out').addEventListener('click', () => this.setOut());
    $('#clip-title').addEventListener('input', (e) => { this.target.title = e.target.value; this.renderClips(); });
    $('#clip-effect').addEventListener('change', (e) => {
      this.target.effect = e.target.value;
      this.fitCrops();
      this.keyframe = -1;
      this.render();
    });
    this.clipList.addEventListener('select', (e) => this.selectClip(e.detail.index));
    this.clipList.addEventListener('reorder', (e) => this.reorderClip(e.detail.from, e.detail.to));
    this.clipList.addEventListener('remove', (e) => this.removeClip(e.detail.index));
  }

  onKey(e) {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || !this.player.ready) return;
    const target = e.target instanceof Element ? e.target : document.body;
    if (target.closest('input, select, textarea, [contenteditable="true"], dialog')) return;
    const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    const inMulti = this.type === 'multi_clip';
    const actions = {
      ' ': () => !target.closest('button, summary, a') && this.togglePlay(),
      ArrowLeft: () => this.step(e.shiftKey ? -Math.round(this.player.fps) : -1),
      ArrowRight: () => this.step(e.shiftKey ? Math.round(this.player.fps) : 1),
      k: () => this.addKeyframe(),
      Delete: () => this.deleteKeyframe(),
      Backspace: () => this.deleteKeyframe(),
      i: () => inMulti && this.setIn(),
      o: () => inMulti && this.setOut(),
    };
    if (!(key in actions)) return;
    if (actions[key]() !== false) e.preventDefault();
  }

  // ---------------------------------------------------------------- playback

  togglePlay() {
    const p = this.player;
    const clip = this.type === 'multi_clip' && this.project.clips[this.clip];
    if (!p.playing && clip && clip.key === this.key) {
      const end = clip.end_s ?? Infinity;
      if (p.time < clip.start_s - this.tolerance || p.time >= end - this.tolerance) p.seekTime(clip.start_s);
    }
    p.toggle();
  }

  step(frames) {
    this.player.pause();
    this.player.step(frames);
  }

  onFrame() {
    const clip = this.type === 'multi_clip' && this.project.clips[this.clip];
    if (clip && clip.end_s != null && this.player.playing && clip.key === this.key && this.player.time >= clip.end_s - this.tolerance) {
      this.player.pause();
    }
    this.drawFrame();
    if (this.player.ready) this.timeline.renderPlayhead();  // ranges and keyframes change only with an edit: render()
    this.renderTransport();
  }

  // ---------------------------------------------------------------- editing

  setType(type) {
    this.project.type = type;
    this.keyframe = -1;
    if (type !== 'multi_clip') this.project.single.key = this.key;
    this.fitCrops();
    this.render();
  }

  chooseVideo(key) {
    if (this.type === 'multi_clip') this.clip = -1;  // new clips take the chosen video
    this.keyframe = -1;
    this.open(key);
    this.render();
  }

  /** Values from the stage (a drag): keyed at the playhead. */
  edit({ kind, index, values }) {
    const t = this.player.time;
    const target = this.target;
    if (kind === 'region') {
      const region = target.overlay.regions[index];
      if (!region) return;
      this.region = index;
      this.keyframe = setAt(region.keyframes, t, { ...ellipseAt(region, t), ...values }, this.tolerance);
    } else {
      this.keyframe = setAt(target.framing.keyframes, t, values, this.tolerance);
    }
    this.render();
  }

  /** Pin the current values at the playhead as a keyframe (K). */
  addKeyframe() {
    const track = this.track;
    if (!track.length || !this.player.ready) return false;
    const t = this.player.time;
    this.keyframe = setAt(track, t, interpolate(track, t, this.fields), this.tolerance);
    this.say(`Keyframe ${this.keyframe + 1} at ${formatTime(t)}.`);
    this.render();
    return true;
  }

  deleteKeyframe() {
    const track = this.track;
    if (!track[this.keyframe]) return false;
    const t = track[this.keyframe].t;
    if (!removeAt(track, this.keyframe)) {
      this.say(this.target.effect === 'overlay'
        ? 'A region keeps at least one keyframe: remove the region instead.' : 'The crop keeps at least one keyframe.', true);
      return true;
    }
    this.keyframe = -1;
    this.say(`Keyframe at ${formatTime(t)} deleted.`);
    this.render();
    return true;
  }

  selectKeyframe(index) {
    const k = this.track[index];
    if (!k) return;
    this.keyframe = index;
    this.player.pause();
    this.player.seekTime(k.t);
    this.render();
  }

  selectAtPlayhead() {
    this.keyframe = indexAt(this.track, this.player.time, this.tolerance);
  }

  editKeyframe(input) {
    const k = this.track[this.keyframe];
    const value = Number(input.value);
    if (!k || input.value === '' || !Number.isFinite(value)) { this.renderPanels(); return; }
    const field = input.dataset.field;
    if (field === 't') {
      moveTo(this.track, this.keyframe, Math.max(0, value), 1 / this.player.fps);
    } else if (this.target.effect === 'framing') {  // the crop keeps the output's aspect: w and h move together
      const { width, height } = this.player.size;
      const ratio = width / (height * this.aspect);  // h / w
      const crop = { ...k, [field]: value };
      if (field === 'w') crop.h = value * ratio;
      if (field === 'h') crop.w = value / ratio;
      Object.assign(k, fitCrop(crop, this.aspect, width, height));
    } else {
      k[field] = clamp(value, field.startsWith('r') ? MIN_RADIUS : 0, 1);
    }
    this.render();
  }

  addRegion() {
    const regions = this.target.overlay?.regions;
    if (!regions) return;
    const n = regions.length;
    regions.push(newRegion(this.player.time, { x: 0.3 + 0.2 * (n % 3), y: 0.5 }));
    this.region = n;
    this.keyframe = 0;
    this.say(`Region ${n + 1} added.`);
    this.render();
  }

  removeRegion() {
    const regions = this.target.overlay?.regions;
    if (!regions || regions.length <= 1) { this.say('The spotlight keeps at least one region.', true); return; }
    regions.splice(this.region, 1);
    this.region = Math.min(this.region, regions.length - 1);
    this.keyframe = -1;
    this.render();
  }

  setRegion(values) {
    const region = this.target.overlay?.regions[this.region];
    if (!region) return;
    Object.assign(region, values);
    this.drawFrame();
    this.renderPanels();
  }

  setOutputSize(w, h) {
    const framing = this.target.framing;
    if (!(w >= 16 && h >= 16)) { this.renderPanels(); return; }
    Object.assign(framing, { output_width: Math.round(w), output_height: Math.round(h) });
    this.fitCrops();
    this.render();
  }

  // ---------------------------------------------------------------- the reel

  addClip() {
    if (!this.player.ready) return;
    const clips = this.project.clips;
    const at = this.clip >= 0 ? this.clip + 1 : clips.length;
    clips.splice(at, 0, newClip(this.key, this.player.time));
    this.clip = at;
    this.keyframe = -1;
    this.region = 0;
    this.fitCrops();
    this.say(`Clip ${at + 1} added from ${formatTime(this.player.time)}. Set its out point with the playhead.`);
    this.render();
  }

  setIn() {
    const clip = this.project.clips[this.clip];
    if (!clip) { this.say('Add a clip first.', true); return; }
    clip.start_s = this.player.time;
    if (clip.end_s != null && clip.end_s <= clip.start_s) clip.end_s = null;
    this.render();
  }

  setOut() {
    const clip = this.project.clips[this.clip];
    if (!clip) { this.say('Add a clip first.', true); return; }
    if (this.player.time <= clip.start_s) { this.say('The out point must be after the in point.', true); return; }
    clip.end_s = this.player.time;
    this.render();
  }

  selectClip(index) {
    const clip = this.project.clips[index];
    if (!clip) return;
    this.clip = index;
    this.region = 0;
    this.keyframe = -1;
    if (clip.key !== this.key) {
      $('#input-video').value = clip.key;
      this.open(clip.key).then(() => this.player.seekTime(clip.start_s));
    } else {
      this.player.pause();
      this.player.seekTime(clip.start_s);
    }
    this.render();
  }

  reorderClip(from, to) {
    const clips = this.project.clips;
    if (to < 0 || to >= clips.length) { this.renderClips(); return; }
    const selected = clips[this.clip];
    clips.splice(to, 0, ...clips.splice(from, 1));
    this.clip = clips.indexOf(selected);
    if (from !== to) this.say(`Clip moved to position ${to + 1}.`);
    this.render();
  }

  removeClip(index) {
    this.project.clips.splice(index, 1);
    this.clip = Math.min(this.clip, this.project.clips.length - 1);
    this.render();
  }

  // ---------------------------------------------------------------- drawing

  render() {
    this.renderPanels();
    this.renderClips();
    this.drawFrame();
    this.renderTimeline();
    this.renderTransport();
  }

  drawFrame() {
    if (!this.player.ready) return;
    const target = this.target;
    const t = this.player.time;
    const effect = target.key === this.key ? target.effect : 'none';
    const regions = effect === 'overlay' ? target.overlay.regions : [];
    const crop = effect === 'framing' && target.framing.keyframes.length ? cropAt(target.framing.keyframes, t) : null;
    this.stage.draw({
      effect, t, regions, region: this.region, crop,
      ellipses: regions.map((r) => ellipseAt(r, t)),
      aspect: effect === 'framing' ? this.aspect : 1,
      framed: $('#framed'),
    });
  }

  renderTimeline() {
    if (!this.player.ready) return;
    const multi = this.type === 'multi_clip';
    const ranges = multi ? this.project.clips.map((c, i) => ({ ...c, i })).filter((c) => c.key === this.key)
      .map((c) => ({ start: c.start_s, end: c.end_s, selected: c.i === this.clip, label: `Clip ${c.i + 1}` })) : [];
    const what = this.target.effect === 'framing' ? 'Crop keyframe' : `Region ${this.region + 1} keyframe`;
    this.timeline.render({ keyframes: this.track, selected: this.keyframe, ranges, what });
  }

  renderTransport() {
    const p = this.player;
    $('#play').textContent = p.playing ? 'Pause' : 'Play';
    $('#play').setAttribute('aria-pressed', String(p.playing));
    if (!p.ready) return;
    $('#clock').textContent = `${formatTime(p.time)} / ${formatTime(p.length)} · frame ${p.frame + 1} of ${p.frameCount}`
      + ` · ${Number(p.fps.toFixed(3))} fps`;
    const time = $('#time');
    if (document.activeElement !== time) time.value = p.time.toFixed(3);
  }

  renderPanels() {
    const target = this.target;
    const multi = this.type === 'multi_clip';
    const effect = target.effect;
    $('#clips-panel').hidden = !multi;
    $('.multi-keys').hidden = !multi;  // I and O set a clip's in and out
    $('#overlay-panel').hidden = effect !== 'overlay';
    $('#framing-panel').hidden = effect !== 'framing';
    $('#keyframe-panel').hidden = effect === 'none';
    $('#add-keyframe').disabled = effect === 'none';
    for (const panel of $$('fieldset[data-for]')) panel.disabled = panel.hidden;
    if (effect === 'overlay') this.renderOverlayPanel(target.overlay);
    if (effect === 'framing') this.renderFramingPanel(target.framing);
    this.renderKeyframePanel();
  }

  renderOverlayPanel(overlay) {
    this.region = Math.min(this.region, overlay.regions.length - 1);
    const region = overlay.regions[this.region];
    $('#regions').replaceChildren(...overlay.regions.map((r, i) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = `Region ${i + 1}`;
      b.setAttribute('aria-pressed', String(i === this.region));
      b.addEventListener('click', () => { this.region = i; this.selectAtPlayhead(); this.render(); });
      return b;
    }));
    $('#remove-region').disabled = overlay.regions.length <= 1;
    $('#dim').value = region.dim;
    $('#dim-value').textContent = `${Math.round(region.dim * 100)}%`;
    $('#feather').value = region.feather;
    $('#feather-value').textContent = region.feather.toFixed(3);
  }

  renderFramingPanel(framing) {
    const size = `${framing.output_width}x${framing.output_height}`;
    const select = $('#output-size');
    const listed = OUTPUT_SIZES.some((s) => `${s.width}x${s.height}` === size);
    if (select.value !== 'custom' || listed) select.value = listed ? size : 'custom';
    $('#output-width').value = framing.output_width;
    $('#output-height').value = framing.output_height;
    $('#upscale-model').value = framing.upscale_model;
    $('#upscale-note').textContent = UPSCALE_MODELS[framing.upscale_model].note;
    const framed = $('#framed');
    const scale = FRAMED_PREVIEW_SIDE / Math.max(framing.output_width, framing.output_height);
    const [w, h] = [Math.round(framing.output_width * scale), Math.round(framing.output_height * scale)];
    if (framed.width !== w || framed.height !== h) Object.assign(framed, { width: w, height: h });
  }

  renderKeyframePanel() {
    const effect = this.target.effect;
    const k = this.track[this.keyframe];
    if (!k) this.keyframe = -1;
    $('#keyframe-hint').textContent = k
      ? `Keyframe ${this.keyframe + 1} of ${this.track.length}. Its easing shapes the way to the next one.`
      : 'No keyframe selected. Drag the shape while paused, or press K, to key it at the playhead; pick a keyframe on the timeline to edit it.';
    $('#keyframe-fields').hidden = !k;
    for (const group of $$('#keyframe-fields [data-effect]')) {
      group.hidden = group.dataset.effect !== effect;
      for (const input of $$('input', group)) input.disabled = group.hidden;
    }
    if (!k) return;
    for (const input of $$('#keyframe-fields input[data-field]')) {
      if (input.disabled) continue;
      input.value = input.dataset.field === 't' ? k.t.toFixed(3) : Number(k[input.dataset.field]).toFixed(3);
    }
    $('#kf-easing').value = k.easing;
  }

  renderClips() {
    const clips = this.project.clips;
    const durationOf = (key) => this.durations.get(key);
    this.clipList.render(clips, this.clip, this.nameOf, durationOf);
    const clip = clips[this.clip];
    $('#clip-fields').hidden = !clip;
    $('#set-in').disabled = $('#set-out').disabled = !clip;
    if (clip) {
      if (document.activeElement !== $('#clip-title')) $('#clip-title').value = clip.title;
      $('#clip-effect').value = clip.effect;
    }
    $('#reel-length').textContent = clips.length
      ? `Reel: ${clips.length} clip${clips.length === 1 ? '' : 's'}, ${reelLength(clips, durationOf).toFixed(2)} s in all.`
      : 'No clips yet: find the first moment with the playhead, then add a clip.';
  }

  say(text, problem = false) {
    const el = $('#editor-status');
    el.textContent = text;
    el.classList.toggle('error', problem);
  }
}
