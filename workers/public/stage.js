// The stage: the frame on screen drawn on a canvas with the export's effect (the live preview), and the
// editable shapes over it: one ellipse per spotlight region, or the framing crop window. Dragging a shape
// or one of its handles reports the new values ('edit' events); the editor keys them at the playhead.

import { drawCrop, resizeCrop } from './framing.js';
import { spotlightI420, spotlightRgba } from './spotlight.js';

const SVG = 'http://www.w3.org/2000/svg';
const MAX_PREVIEW_PIXELS = 960 * 540;  // the spotlight is computed per pixel in JS: keep a frame's work small
const HANDLE_PX = 9;
export const MIN_RADIUS = 0.01;  // of the frame: a region's smallest radius, dragged or typed

export const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

function svgEl(name, attrs) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

export class Stage extends EventTarget {
  constructor({ root, canvas, svg }, player) {
    super();
    Object.assign(this, { root, canvas, svg, player });
    this.ctx = canvas.getContext('2d', { willReadFrequently: true });
    this.view = null;
    this.cssWidth = 1;
    new ResizeObserver(([entry]) => { this.cssWidth = entry.contentRect.width || 1; this.drawShapes(); }).observe(svg);
    svg.addEventListener('pointerdown', (e) => this.startGesture(e));
  }

  /** Size the canvas and the shapes' coordinates to the video (call when one is loaded). */
  layout() {
    const { width, height } = this.player.size;
    const scale = Math.min(1, Math.sqrt(MAX_PREVIEW_PIXELS / (width * height)));
    this.canvas.width = Math.round(width * scale);
    this.canvas.height = Math.round(height * scale);
    this.root.style.aspectRatio = `${width} / ${height}`;
    this.svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    this.yuv = null;  // a new video: its frames are tried as I420 again
  }

  /** Draw the frame on screen with `view`: {effect: 'overlay'|'framing'|'none', t, regions, region (the
   * selected one), ellipses (its values at t), crop (at t), aspect (the output's w / h), framed (a canvas for
   * the cropped output)}. */
  draw(view) {
    this.view = view;
    this.ticket = (this.ticket || 0) + 1;
    if (view.effect === 'overlay' && view.regions.length && this.yuv !== false) {
      this.drawI420(view, this.ticket);
    } else {
      this.drawRgb(view);
    }
    if (view.effect === 'framing' && view.crop && view.framed) {
      const { width, height } = this.player.size;
      drawCrop(view.framed.getContext('2d'), this.player.video, view.crop, width, height);
    }
    this.drawShapes();
  }

  drawn() { this.root.dataset.frame = String(this.player.frame); }

  drawRgb(view) {
    const { ctx, canvas } = this;
    ctx.drawImage(this.player.video, 0, 0, canvas.width, canvas.height);
    if (view.effect === 'overlay' && view.regions.length) {
      const image = ctx.getImageData(0, 0, canvas.width, canvas.height);
      spotlightRgba(image, view.regions, view.t);
      ctx.putImageData(image, 0, 0);
    }
    this.drawn();
  }

  // The worker's own path where it can: the decoded I420 planes, dimmed, then drawn by the browser
  // (WebCodecs VideoFrame). The frame on screen is copied once; redraws while dragging reuse the copy.
  async drawI420(view, ticket) {
    const at = this.player.mediaTime;
    if (this.yuv?.at !== at) {
      this.yuv = null;
      const yuv = await this.copyI420(at);
      if (ticket !== this.ticket) return;
      if (!yuv) { this.drawRgb(view); return; }
      this.yuv = yuv;
    }
    const { format, width, height, layout, colorSpace } = this.yuv;
    const data = this.yuv.data.slice();
    const [y, u, v] = format === 'NV12'
      ? [{ ...layout[0], pixelStride: 1 }, { ...layout[1], pixelStride: 2 }, { ...layout[1], offset: layout[1].offset + 1, pixelStride: 2 }]
      : layout.map((plane) => ({ ...plane, pixelStride: 1 }));
    spotlightI420({ y: { data, ...y }, u: { data, ...u }, v: { data, ...v } }, width, height, view.regions, view.t);
    const frame = new VideoFrame(data, { format, codedWidth: width, codedHeight: height, timestamp: 0, layout, colorSpace });
    this.ctx.drawImage(frame, 0, 0, this.canvas.width, this.canvas.height);
    frame.close();
    this.drawn();
  }

  /** The frame on screen as 8-bit 4:2:0 limited-range planes, or null where the browser has none (then the
   * worker too works in RGB: odd sizes, full range) or cannot hand them over. */
  async copyI420(at) {
    if (typeof VideoFrame === 'undefined') { this.yuv = false; return null; }
    let frame;
    try { frame = new VideoFrame(this.player.video); } catch { return null; }  // no frame yet
    try {
      const { format, colorSpace, visibleRect: { width, height } } = frame;
      if (!['I420', 'NV12'].includes(format) || colorSpace.fullRange || width % 2 || height % 2) {
        this.yuv = false;
        return null;
      }
      const data = new Uint8Array(frame.allocationSize());
      const layout = await frame.copyTo(data);
      return { at, format, width, height, layout, data, colorSpace: colorSpace.toJSON() };
    } catch {
      return null;
    } finally {
      frame.close();
    }
  }

  // ---------------------------------------------------------------- shapes

  drawShapes() {
    const view = this.view;
    if (!view || !this.player.ready) { this.svg.replaceChildren(); return; }
    const { width: W, height: H } = this.player.size;
    const r = (HANDLE_PX * W) / this.cssWidth;
    const shapes = [];
    if (view.effect === 'overlay') {
      view.ellipses.forEach((e, i) => {
        const selected = i === view.region;
        shapes.push(svgEl('ellipse', {
          class: `shape region${selected ? ' selected' : ''}`, 'data-role': 'move', 'data-index': i,
          cx: e.x * W, cy: e.y * H, rx: e.rx * W, ry: e.ry * H,
        }));
        if (selected) {
          shapes.push(svgEl('circle', { class: 'handle centre', 'data-role': 'move', 'data-index': i, cx: e.x * W, cy: e.y * H, r: r * 0.7 }));
          shapes.push(svgEl('circle', { class: 'handle', 'data-role': 'rx', 'data-index': i, cx: (e.x + e.rx) * W, cy: e.y * H, r }));
          shapes.push(svgEl('circle', { class: 'handle', 'data-role': 'ry', 'data-index': i, cx: e.x * W, cy: (e.y + e.ry) * H, r }));
        }
      });
    } else if (view.effect === 'framing' && view.crop) {
      const c = view.crop;
      const [x, y, w, h] = [c.x * W, c.y * H, c.w * W, c.h * H];
      shapes.push(svgEl('path', { class: 'outside', d: `M0 0H${W}V${H}H0Z M${x} ${y}h${w}v${h}h${-w}Z` }));
      shapes.push(svgEl('rect', { class: 'shape crop selected', 'data-role': 'crop', x, y, width: w, height: h }));
      const inset = Math.min(r, w / 4, h / 4);  // inside the window: its corner may be the frame's
      shapes.push(svgEl('circle', { class: 'handle', 'data-role': 'crop-size', cx: x + w - inset, cy: y + h - inset, r }));
    }
    this.svg.replaceChildren(...shapes);
  }

  // ---------------------------------------------------------------- gestures

  point(e) {
    const box = this.svg.getBoundingClientRect();
    return { x: (e.clientX - box.left) / box.width, y: (e.clientY - box.top) / box.height };
  }

  startGesture(e) {
    const role = e.target.dataset?.role;
    if (!role || !this.view) return;
    e.preventDefault();
    const index = Number(e.target.dataset.index || 0);
    const start = this.point(e);
    const shape = role.startsWith('crop') ? { ...this.view.crop } : { ...this.view.ellipses[index] };
    const { width: W, height: H } = this.player.size;
    this.svg.setPointerCapture(e.pointerId);
    this.dispatchEvent(new CustomEvent('gesturestart', { detail: { index } }));
    const values = (p) => {
      const dx = p.x - start.x;
      const dy = p.y - start.y;
      switch (role) {
        case 'move': return { x: clamp(shape.x + dx, 0, 1), y: clamp(shape.y + dy, 0, 1) };
        case 'rx': return { rx: clamp(shape.rx + dx, MIN_RADIUS, 1) };
        case 'ry': return { ry: clamp(shape.ry + dy, MIN_RADIUS, 1) };
        case 'crop': return { ...shape, x: clamp(shape.x + dx, 0, 1 - shape.w), y: clamp(shape.y + dy, 0, 1 - shape.h) };
        default: return resizeCrop(shape, shape.w + dx, this.view.aspect, W, H);  // crop-size
      }
    };
    const move = (m) => {
      this.dispatchEvent(new CustomEvent('edit', { detail: { kind: role.startsWith('crop') ? 'crop' : 'region', index, values: values(this.point(m)) } }));
    };
    const end = () => {
      this.svg.removeEventListener('pointermove', move);
      this.svg.removeEventListener('pointerup', end);
      this.svg.removeEventListener('pointercancel', end);
      this.dispatchEvent(new CustomEvent('gestureend', { detail: { index } }));
    };
    this.svg.addEventListener('pointermove', move);
    this.svg.addEventListener('pointerup', end);
    this.svg.addEventListener('pointercancel', end);
  }
}
