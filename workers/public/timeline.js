// The timeline under the video: a scrubber (the playhead, and the clips' in-out ranges) and the selected
// track's keyframes as buttons: click one to select it and go to it, drag it to move it in time.

import { EASING_NAMES } from './keyframes.js';

const DRAG_PX = 4;  // a press that moves less than this is a click

export function formatTime(seconds) {
  const m = Math.floor(seconds / 60);
  const s = seconds - m * 60;
  return `${m}:${s.toFixed(2).padStart(5, '0')}`;
}

export class Timeline extends EventTarget {
  constructor({ scrubber, playhead, ranges, markers }, player) {
    super();
    Object.assign(this, { scrubber, playhead, rangesEl: ranges, markersEl: markers, player });
    this.scrub();
    scrubber.addEventListener('keydown', (e) => this.onKey(e));
  }

  fraction(clientX) {
    const box = this.scrubber.getBoundingClientRect();
    return Math.min(1, Math.max(0, (clientX - box.left) / box.width));
  }

  timeAt(clientX) {
    return this.player.timeOf(this.player.frameOf(this.fraction(clientX) * this.player.length));
  }

  percent(t) {
    return `${(100 * Math.min(1, t / this.player.length)).toFixed(3)}%`;
  }

  scrub() {
    const s = this.scrubber;
    s.addEventListener('pointerdown', (e) => {
      if (!this.player.ready) return;
      s.setPointerCapture(e.pointerId);
      this.player.pause();
      this.player.seekTime(this.timeAt(e.clientX));
      const move = (m) => this.player.seekTime(this.timeAt(m.clientX));
      const up = () => { s.removeEventListener('pointermove', move); s.removeEventListener('pointerup', up); };
      s.addEventListener('pointermove', move);
      s.addEventListener('pointerup', up);
      s.addEventListener('pointercancel', up, { once: true });
    });
  }

  onKey(e) {
    const p = this.player;
    const jumps = { Home: -Infinity, End: Infinity, PageUp: -Math.round(p.fps), PageDown: Math.round(p.fps) };
    if (!(e.key in jumps)) return;
    e.preventDefault();
    const to = jumps[e.key];
    p.seekFrame(Number.isFinite(to) ? p.frame + to : (to < 0 ? 0 : p.frameCount - 1));
  }

  /** Draw the playhead (every frame shown: the rest changes only with an edit). */
  renderPlayhead() {
    const p = this.player;
    this.playhead.style.left = this.percent(p.time);
    this.scrubber.setAttribute('aria-valuemax', p.length.toFixed(2));
    this.scrubber.setAttribute('aria-valuenow', p.time.toFixed(2));
    this.scrubber.setAttribute('aria-valuetext', `${formatTime(p.time)}, frame ${p.frame + 1} of ${p.frameCount}`);
  }

  /** Draw the playhead, ranges ({start, end, selected, label}) and keyframes ({t, easing}, `selected` index). */
  render({ keyframes = [], selected = -1, ranges = [], what = 'keyframe' } = {}) {
    const total = this.player.length;
    this.renderPlayhead();
    this.rangesEl.replaceChildren(...ranges.map((r) => {
      const el = document.createElement('span');
      el.className = `range${r.selected ? ' selected' : ''}`;
      el.style.left = this.percent(r.start);
      el.style.width = `calc(${this.percent(r.end ?? total)} - ${this.percent(r.start)})`;
      el.title = r.label;
      return el;
    }));
    this.renderMarkers(keyframes, selected, what);
  }

  renderMarkers(keyframes, selected, what) {
    const buttons = [...this.markersEl.children];
    while (buttons.length > keyframes.length) buttons.pop().remove();
    while (buttons.length < keyframes.length) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'marker';
      this.draggable(b);
      this.markersEl.append(b);
      buttons.push(b);
    }
    keyframes.forEach((k, i) => {
      const b = buttons[i];
      b.dataset.index = i;
      b.style.left = this.percent(k.t);
      b.setAttribute('aria-pressed', String(i === selected));
      b.setAttribute('aria-label', `${what} ${i + 1} at ${formatTime(k.t)}, ${EASING_NAMES[k.easing] || k.easing} to the next`);
    });
  }

  // A marker: a click selects it; a drag moves it in time ('move' events), snapped to frames.
  draggable(button) {
    button.addEventListener('pointerdown', (e) => {
      button.setPointerCapture(e.pointerId);
      const index = Number(button.dataset.index);
      const x0 = e.clientX;
      let moved = false;
      const move = (m) => {
        if (!moved && Math.abs(m.clientX - x0) < DRAG_PX) return;
        moved = true;
        this.dispatchEvent(new CustomEvent('move', { detail: { index, t: this.timeAt(m.clientX) } }));
      };
      const up = () => {
        button.removeEventListener('pointermove', move);
        button.removeEventListener('pointerup', up);
        button.removeEventListener('pointercancel', up);
        if (!moved) this.dispatchEvent(new CustomEvent('select', { detail: { index } }));
      };
      button.addEventListener('pointermove', move);
      button.addEventListener('pointerup', up);
      button.addEventListener('pointercancel', up);
    });
    button.addEventListener('click', (e) => {
      if (e.detail === 0) this.dispatchEvent(new CustomEvent('select', { detail: { index: Number(button.dataset.index) } }));
    });
  }
}
