// The source video, frame by frame. Frame n of the job is the video's n-th frame, at n / fps seconds
// after the first one (as the GPU worker numbers them); the player reports which frame is on screen
// (requestVideoFrameCallback's mediaTime: the frame's own timestamp) and seeks to the middle of a frame.

const RATES = [10, 12, 15, 24000 / 1001, 24, 25, 30000 / 1001, 30, 48, 50, 60000 / 1001, 60, 90, 100, 120];
const SEEK_FALLBACK_MS = 300;  // a browser that presents no frame after a seek: trust currentTime

/** The frame rate a frame duration means: the nearest common rate when within 0.03 % of it (29.97 and
 * 30 are 0.1 % apart; timestamps come in microseconds). */
export function rateOf(frameSeconds) {
  const measured = 1 / frameSeconds;
  const error = (r) => Math.abs(r - measured) / r;
  const nearest = RATES.reduce((a, b) => (error(b) < error(a) ? b : a));
  return error(nearest) < 0.0003 ? nearest : measured;
}

export class Player extends EventTarget {
  constructor(video) {
    super();
    this.video = video;
    this.fps = 30;
    this.origin = 0;  // timestamp of the first frame
    this.frame = 0;
    this.ready = false;
    this.waiters = [];
    for (const type of ['play', 'pause', 'ended']) video.addEventListener(type, () => this.dispatchEvent(new Event('state')));
  }

  get playing() { return !this.video.paused && !this.video.ended; }

  get duration() { return Number.isFinite(this.video.duration) ? this.video.duration : 0; }

  get frameCount() { return Math.max(1, Math.round((this.duration - this.origin) * this.fps)); }

  /** Seconds of the video: its frames at the frame rate. */
  get length() { return this.frameCount / this.fps; }

  get time() { return this.frame / this.fps; }

  get size() { return { width: this.video.videoWidth, height: this.video.videoHeight }; }

  /** Job time (s) of frame n, and the frame shown at job time t. */
  timeOf(frame) { return frame / this.fps; }

  frameOf(time) { return Math.min(this.frameCount - 1, Math.max(0, Math.round(time * this.fps))); }

  /** Load a video; resolves true once its first frame is shown and its frame rate is known, false when
   * another open() came first. */
  async open(url) {
    const opening = (this.opening || 0) + 1;
    this.opening = opening;
    this.ready = false;
    this.video.pause();
    await this.load(url);
    if (opening !== this.opening) return false;
    await this.measureFrameRate();
    if (opening !== this.opening) return false;
    this.ready = true;
    await this.seekFrame(0);
    return true;
  }

  /** Swap the URL (an expired presigned GET) and stay on the same frame. */
  async reopen(url) {
    const frame = this.frame;
    await this.load(url);
    await this.seekFrame(frame);
  }

  load(url) {
    const video = this.video;
    return new Promise((resolve, reject) => {
      const done = (error) => {
        video.removeEventListener('loadedmetadata', loaded);
        video.removeEventListener('error', failed);
        if (error) reject(error); else resolve();
      };
      const loaded = () => done();
      const failed = () => done(new Error('the video cannot be played here'));
      video.addEventListener('loadedmetadata', loaded);
      video.addEventListener('error', failed);
      video.src = url;
      this.watchFrames();
    });
  }

  // Every frame the browser presents (after a seek, or while playing) is reported as a 'frame' event.
  // (Re)armed with each new source; a browser without requestVideoFrameCallback reports currentTime.
  watchFrames() {
    const video = this.video;
    if (this.watching === undefined) {
      video.addEventListener('seeked', () => {
        const seekId = this.seekId;
        setTimeout(() => { if (this.seekId === seekId && this.waiters.length) this.presented(video.currentTime); }, SEEK_FALLBACK_MS);
      });
      if (!('requestVideoFrameCallback' in video)) {
        const tick = () => { if (this.playing) { this.presented(video.currentTime); requestAnimationFrame(tick); } };
        video.addEventListener('play', () => requestAnimationFrame(tick));
      }
    }
    if (!('requestVideoFrameCallback' in video)) { this.watching = null; return; }
    if (this.watching) video.cancelVideoFrameCallback(this.watching);
    const onFrame = (now, meta) => {
      this.watching = video.requestVideoFrameCallback(onFrame);
      this.presented(meta.mediaTime);
    };
    this.watching = video.requestVideoFrameCallback(onFrame);
  }

  presented(mediaTime) {
    this.mediaTime = mediaTime;
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve(mediaTime);
    if (!this.ready) return;
    this.frame = Math.max(0, Math.round((mediaTime - this.origin) * this.fps));
    this.dispatchEvent(new Event('frame'));
  }

  /** Seek to a media time; resolves with the timestamp of the frame then shown. */
  showAt(seconds) {
    this.seekId = (this.seekId || 0) + 1;
    const shown = new Promise((resolve) => this.waiters.push(resolve));
    this.video.currentTime = Math.max(0, seconds);
    return shown;
  }

  // The first frame's timestamp, then the next frame's, found by stepping back from 0.1 s one frame at a time.
  async measureFrameRate() {
    const first = await this.showAt(0);
    let next = null;
    let at = first + 0.1;
    for (let i = 0; i < 16; i += 1) {
      const shown = await this.showAt(at);
      if (shown <= first + 1e-6) break;
      next = shown;
      at = shown - 0.0005;
    }
    this.origin = first;
    this.fps = next ? rateOf(next - first) : 30;
  }

  seekFrame(frame) {
    const n = Math.min(this.frameCount - 1, Math.max(0, Math.round(frame)));
    return this.showAt(this.origin + (n + 0.5) / this.fps);
  }

  seekTime(time) { return this.seekFrame(this.frameOf(time)); }

  step(frames) { return this.seekFrame(this.frame + frames); }

  play() {
    if (this.frame >= this.frameCount - 1) this.seekFrame(0);
    return this.video.play().catch(() => {});
  }

  pause() { this.video.pause(); }

  toggle() { return this.playing ? this.pause() : this.play(); }
}
