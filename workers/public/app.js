// The export page: upload a video straight to R2, edit the export on it (editor.js), follow every job live.
// Plain ES modules, no build step. Talks only to the API described in the README.

import { Editor } from './editor.js';
import { SpecProblem } from './project.js';

import { authHeaders, config as deploymentConfig, renewSignIn, signIn as obtainSignIn } from './signin.js';

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

const MiB = 1024 * 1024;
const PART_CONCURRENCY = 3;
const POLL_MS = 3000;          // while a job's socket is down
const BACKOFF_MAX_MS = 30000;  // socket reconnects: 1 s, 2 s, 4 s ... 30 s, with jitter
const PING_MS = 25000;
const TERMINAL = new Set(['complete', 'error', 'cancelled']);
const STATUS_WORDS = {
  pending: 'Waiting for a GPU', processing: 'Rendering', complete: 'Done', error: 'Failed', cancelled: 'Cancelled',
};
const TYPE_WORDS = { overlay: 'Spotlight overlay', framing: 'Portrait framing', multi_clip: 'Multi-clip reel' };
const TYPES_BY_EXTENSION = {
  mp4: 'video/mp4', m4v: 'video/mp4', mov: 'video/quicktime', webm: 'video/webm', mkv: 'video/x-matroska',
  avi: 'video/x-msvideo', mpg: 'video/mpeg', mpeg: 'video/mpeg',
};

// ------------------------------------------------------------------ small helpers

function formatBytes(n) {
  const units = ['bytes', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
  return i === 0 ? `${n} bytes` : `${n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

function formatDuration(seconds) {
  if (seconds < 10) return `${Math.max(0, seconds).toFixed(1)} s`;
  seconds = Math.round(seconds);
  if (seconds < 60) return `${seconds} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${seconds % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function announce(text) {
  const el = $('#announcer');
  el.textContent = '';
  setTimeout(() => { el.textContent = text; }, 50);
}

function toast(message, { kind = 'info', actions = [], detail = '', timeoutMs = kind === 'error' ? 0 : 6000 } = {}) {
  const el = document.createElement('div');
  el.className = `toast toast-${kind}`;
  if (kind === 'error') el.setAttribute('role', 'alert');
  const text = document.createElement('p');
  text.className = 'toast-message';
  text.textContent = message;
  el.append(text);
  if (detail) {
    const d = document.createElement('p');
    d.className = 'toast-detail';
    d.textContent = detail;
    el.append(d);
  }
  const row = document.createElement('div');
  row.className = 'toast-actions';
  for (const { label, onClick, primary } of actions) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = label;
    if (primary) b.className = 'primary';
    b.addEventListener('click', () => onClick(el));
    row.append(b);
  }
  const close = document.createElement('button');
  close.type = 'button';
  close.className = 'dismiss';
  close.textContent = 'Dismiss';
  close.addEventListener('click', () => el.remove());
  row.append(close);
  el.append(row);
  $('#toasts').append(el);
  if (timeoutMs && !actions.length) setTimeout(() => el.remove(), timeoutMs);
  return el;
}

// ------------------------------------------------------------------ the API

class ApiError extends Error {
  constructor(status, code, reason) {
    super(reason || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.reason = reason || '';
  }
}

const session = { userId: null };

async function errorOf(response) {
  let body = {};
  try { body = await response.json(); } catch { /* not JSON */ }
  return new ApiError(response.status, body.error, body.reason || response.statusText);
}

/** A demo link (`make dev` prints one) may also name a video: #token=<token>&video=<key>&name=<file
 * name>&size=<bytes>. signin.js adopts the token only once the person confirms the account. */
function sharedVideo(link) {
  const key = link?.get('video');
  return key ? { key, name: link.get('name') || key.split('/').pop(), size: Number(link.get('size')) || 0 } : null;
}

async function signIn({ fresh = false } = {}) {
  const signedIn = await (fresh ? renewSignIn() : obtainSignIn());
  session.userId = signedIn.userId;
  return signedIn;
}

async function api(path, { method = 'GET', body, headers = {} } = {}, retried = false) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: {
        ...authHeaders(),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'network', 'the server cannot be reached; check your connection');
  }
  if (response.status === 401 && !retried) {
    // An expired token, or one from another deployment (or a restarted local stack): sign in again.
    await signIn({ fresh: true });
    library.load();
    return api(path, { method, body, headers }, true);
  }
  if (!response.ok) throw await errorOf(response);
  return response.json();
}

// ------------------------------------------------------------------ uploads

function contentTypeOf(file) {
  if (file.type) return file.type;
  return TYPES_BY_EXTENSION[file.name.split('.').pop().toLowerCase()] || 'application/octet-stream';
}

function uploadRefusal(error, file) {
  if (error.status === 413) {
    const limit = /limit is (\d+) bytes/.exec(error.reason);
    return `Upload refused: the file is too large (${formatBytes(file.size)}`
      + (limit ? `; the limit is ${formatBytes(Number(limit[1]))}).` : `). ${error.reason}`);
  }
  if (error.status === 415) return `Upload refused: wrong file type. ${error.reason}`;
  return `Upload failed: ${error.reason || error.message}`;
}

/** PUT a body with XMLHttpRequest (fetch has no upload progress); resolves with the request. */
function put(url, body, headers, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', url);
    for (const [name, value] of Object.entries(headers || {})) {
      if (name.toLowerCase() !== 'content-length') xhr.setRequestHeader(name, value);  // the browser sets it
    }
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(xhr);
      else reject(new ApiError(xhr.status, 'storage', `the storage refused the file (HTTP ${xhr.status})`));
    };
    xhr.onerror = () => reject(new ApiError(0, 'network', 'the connection to the storage was lost'));
    xhr.send(body);
  });
}

async function uploadMultipart(file, request, onProgress) {
  const plan = await api('/api/videos/multipart', { method: 'POST', body: request });
  const loaded = new Array(plan.parts.length).fill(0);
  const done = [];
  const queue = plan.parts.map((part, i) => ({ part, i }));
  let offset = 0;
  for (const item of queue) { item.start = offset; offset += item.part.size_bytes; }
  const worker = async () => {
    while (queue.length) {
      const { part, i, start } = queue.shift();
      const xhr = await put(part.url, file.slice(start, start + part.size_bytes), {}, (n) => {
        loaded[i] = n;
        onProgress(loaded.reduce((a, b) => a + b, 0));
      });
      const etag = xhr.getResponseHeader('ETag');
      if (!etag) throw new ApiError(0, 'etag', 'the storage did not expose the part ETag (check the bucket CORS rules)');
      done.push({ part_number: part.part_number, etag });
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(PART_CONCURRENCY, queue.length) }, worker));
    done.sort((a, b) => a.part_number - b.part_number);
    await api('/api/videos/multipart/complete', {
      method: 'POST', body: { key: plan.video_key, upload_id: plan.upload_id, parts: done },
    });
  } catch (e) {
    api('/api/videos/multipart/abort', { method: 'POST', body: { key: plan.video_key, upload_id: plan.upload_id } })
      .catch(() => {});
    throw e;
  }
  return plan.video_key;
}

async function uploadSingle(file, request, onProgress) {
  const grant = await api('/api/videos/upload-url', { method: 'POST', body: request });
  await put(grant.upload_url, file, grant.headers, onProgress);
  return grant.video_key;
}

function probeDuration(file) {
  return new Promise((resolve) => {
    const video = document.createElement('video');
    const url = URL.createObjectURL(file);
    let settled = false;
    const done = (seconds) => {
      if (settled) return;
      settled = true;
      URL.revokeObjectURL(url);
      resolve(Number.isFinite(seconds) && seconds > 0 ? seconds : null);
    };
    video.preload = 'metadata';
    video.onloadedmetadata = () => done(video.duration);
    video.onerror = () => done(null);
    setTimeout(() => done(null), 3000);
    video.src = url;
  });
}

async function onFileChosen(event) {
  const file = event.target.files[0];
  if (!file) return;
  const status = $('#upload-status');
  const bar = $('#upload-progress');
  status.className = 'status';
  if (file.size === 0) {
    status.className = 'status error';
    status.textContent = 'Upload refused: this file is empty.';
    return;
  }
  const threshold = Number(document.documentElement.dataset.multipartThreshold);
  const multipart = file.size > threshold;
  const request = { filename: file.name, content_type: contentTypeOf(file), size_bytes: file.size };
  $('#upload').hidden = false;
  bar.value = 0;
  status.textContent = `Uploading ${file.name} (${formatBytes(file.size)})…`;
  event.target.disabled = true;
  const onProgress = (bytes) => {
    const pct = Math.min(100, (100 * bytes) / file.size);
    bar.value = pct;
    status.textContent = `Uploading ${file.name}: ${Math.floor(pct)}% of ${formatBytes(file.size)}`;
  };
  try {
    const [key, duration] = await Promise.all([
      (multipart ? uploadMultipart : uploadSingle)(file, request, onProgress), probeDuration(file)]);
    bar.value = 100;
    status.textContent = `Uploaded ${file.name}. Edit its export below.`;
    library.add({ key, name: file.name, size: file.size, duration });
  } catch (e) {
    $('#upload').hidden = true;
    status.className = 'status error';
    status.textContent = uploadRefusal(e, file);
  } finally {
    event.target.disabled = false;
    event.target.value = '';
  }
}

// ------------------------------------------------------------------ uploaded videos (this browser)

const library = {
  videos: [],
  storageKey() { return `exportVideos:${session.userId}`; },
  load() {
    try { this.videos = JSON.parse(localStorage.getItem(this.storageKey()) || '[]'); } catch { this.videos = []; }
    this.render();
  },
  add(video) {
    this.videos = [video, ...this.videos.filter((v) => v.key !== video.key)].slice(0, 50);
    localStorage.setItem(this.storageKey(), JSON.stringify(this.videos));
    this.render();
    choose($('#input-video'), video.key);
  },
  fillSelect(select) {
    const current = select.value;
    select.replaceChildren(...(this.videos.length ? this.videos : [null]).map((v) => {
      const option = document.createElement('option');
      option.value = v ? v.key : '';
      option.textContent = v ? `${v.name}${v.size ? ` (${formatBytes(v.size)})` : ''}` : 'Upload a video first';
      return option;
    }));
    if (this.videos.some((v) => v.key === current)) select.value = current;
  },
  render() {
    const list = $('#videos');
    if (!this.videos.length) {
      list.innerHTML = '<li class="muted">No videos uploaded from this browser yet.</li>';
    } else {
      list.replaceChildren(...this.videos.map((v) => {
        const li = document.createElement('li');
        li.textContent = [v.name, v.size && formatBytes(v.size), v.duration && `${v.duration.toFixed(1)} s`]
          .filter(Boolean).join(' · ');
        return li;
      }));
    }
    const select = $('#input-video');
    const shown = select.value;
    this.fillSelect(select);
    if (select.value !== shown) select.dispatchEvent(new Event('change'));
  },
};

/** Show a video in the editor: it follows the video select. */
function choose(select, key) {
  if (select.value === key) return;
  select.value = key;
  select.dispatchEvent(new Event('change'));
}

// ------------------------------------------------------------------ the export form

const form = () => $('#export-form');
let editor = null;

function formError(text) {
  const el = $('#form-error');
  el.textContent = text || '';
  el.hidden = !text;
}

async function onSubmit(event) {
  event.preventDefault();
  formError('');
  let spec;
  try {
    if ($('#use-json').checked) {
      try { spec = JSON.parse($('#json').value); } catch (e) { throw new SpecProblem(`The job JSON is not valid: ${e.message}`); }
    } else {
      if (!form().reportValidity()) return;
      spec = editor.spec();
    }
  } catch (e) {
    if (e instanceof SpecProblem) { formError(e.message); return; }
    throw e;
  }
  const button = $('#start');
  button.disabled = true;
  button.textContent = 'Starting…';
  try {
    const created = await api('/api/jobs', {
      method: 'POST', body: spec, headers: { 'idempotency-key': crypto.randomUUID() },
    });
    const tracker = jobs.add(created.job);
    tracker.follow(created.websocket_url);
    announce(`${TYPE_WORDS[created.job.type] || 'Export'} started`);
  } catch (e) {
    formError(`Could not start the export: ${e.reason || e.message}`);
  } finally {
    button.disabled = false;
    button.textContent = 'Start export';
  }
}

// ------------------------------------------------------------------ jobs and their sockets

// The note a job event puts beside its card ('' clears it; undefined keeps the current one).
function noteFor(event) {
  const job = event.job;
  const from = job.total_frames && job.checkpoint ? Math.floor((100 * job.checkpoint.frame) / job.total_frames) : 0;
  switch (event.type) {
    case 'started':
      return job.attempts > 0 ? `Attempt ${job.attempts + 1}` : '';
    case 'resumed':
      return `Resumed from ${from}% (attempt ${job.attempts + 1})`;
    case 'requeued':
      if (event.reason === 'retried by user') return 'Retrying';
      return `Interrupted (${event.reason}). Waiting for another GPU; it will ${from ? `resume from ${from}%` : 'start over'}.`;
    case 'complete': case 'error': case 'cancelled':
      return '';
    default:
      return undefined;
  }
}

class JobCard {
  constructor(view) {
    this.view = { ...view };
    this.seq = view.seq || 0;
    this.note = '';
    this.watchedRunning = !TERMINAL.has(view.status);
    this.retries = 0;
    this.ws = null;
    this.timers = {};
    this.el = $('#job-template').content.firstElementChild.cloneNode(true);
    this.el.dataset.jobId = view.job_id;
    $('.cancel', this.el).addEventListener('click', () => this.act('cancel'));
    $('.retry', this.el).addEventListener('click', () => this.act('retry'));
    $('.download', this.el).addEventListener('click', () => downloadJob(this.view.job_id));
    $('.watch', this.el).addEventListener('click', () => this.showResult());
    this.render();
  }

  get id() { return this.view.job_id; }

  get terminal() { return TERMINAL.has(this.view.status); }

  apply(view, seq = view.seq) {
    if (seq !== undefined && seq < this.seq) return;  // older than what is shown
    const wasTerminal = this.terminal;
    this.seq = seq ?? this.seq;
    Object.assign(this.view, view);
    if (!this.note && this.view.resume_count > 0 && !this.terminal) {
      this.note = `Resumed after ${this.view.resume_count === 1 ? 'an interruption' : `${this.view.resume_count} interruptions`}`
        + ` (attempt ${this.view.attempts + 1})`;
    }
    this.render();
    if (this.terminal && !wasTerminal) this.finished();
  }

  // Every event carries the whole job (`event.job`); the type only decides the note shown beside it.
  onEvent(event) {
    if (!event.job || (event.type !== 'snapshot' && event.seq <= this.seq)) return;  // not a job event, or seen
    if (event.type === 'snapshot') {
      this.retries = 0;
      this.stopPolling();
    }
    const note = noteFor(event);
    if (note !== undefined) this.note = note;
    this.apply(event.job, event.seq);
  }

  render() {
    const v = this.view;
    const el = this.el;
    el.dataset.status = v.status;
    const created = v.timing?.created_at ? new Date(v.timing.created_at).toLocaleTimeString() : '';
    $('.job-title', el).textContent = `${TYPE_WORDS[v.type] || v.type} · ${v.job_id.slice(0, 8)}${created ? ` · ${created}` : ''}`;
    const badge = $('.badge', el);
    badge.textContent = STATUS_WORDS[v.status] || v.status;
    badge.className = `badge badge-${v.status}`;
    const pct = Math.max(0, Math.min(100, Number(v.progress) || 0));
    const bar = $('progress', el);
    bar.value = pct;
    bar.setAttribute('aria-label', `Progress of ${TYPE_WORDS[v.type] || 'export'} ${v.job_id.slice(0, 8)}`);
    $('.percent', el).textContent = `${pct >= 100 ? 100 : Math.floor(pct)}%`;
    let detail = '';
    if (v.status === 'processing' && v.eta_s != null && v.eta_s > 0) detail = `About ${formatDuration(v.eta_s)} left.`;
    if (v.status === 'complete' && v.timing?.processing_seconds != null) {
      detail = `Rendered${v.total_frames ? ` ${v.total_frames} frames` : ''} in ${formatDuration(v.timing.processing_seconds)}.`;
    }
    $('.eta', el).textContent = detail;
    $('.note', el).textContent = this.note;
    const polling = Boolean(this.timers.poll);
    el.dataset.live = polling ? 'polling' : 'socket';
    $('.live', el).textContent = polling ? `Live updates interrupted; checking every ${POLL_MS / 1000} s.` : '';
    const error = $('.job-error', el);
    error.hidden = v.status !== 'error';
    error.textContent = v.status === 'error' ? `Export failed: ${v.error || 'no reason given'}` : '';
    $('.cancel', el).hidden = this.terminal;
    $('.retry', el).hidden = v.status !== 'error';
    $('.download', el).hidden = v.status !== 'complete';
    $('.watch', el).hidden = v.status !== 'complete' || this.resultShown;
  }

  /** Play the rendered video in the card, next to its download. */
  async showResult() {
    if (this.resultShown) return;
    this.resultShown = true;
    this.render();
    try {
      const { url } = await api(`/api/jobs/${this.id}/download`);
      const video = document.createElement('video');
      Object.assign(video, { controls: true, playsInline: true, preload: 'metadata', src: url });
      video.setAttribute('aria-label', `The rendered ${TYPE_WORDS[this.view.type] || 'export'} ${this.id.slice(0, 8)}`);
      const box = $('.job-result', this.el);
      box.replaceChildren(video);
      box.hidden = false;
    } catch (e) {
      this.resultShown = false;
      this.render();
      toast(`Could not show the export: ${e.reason || e.message}`, { kind: 'error' });
    }
  }

  async act(action) {
    const button = $(`.${action}`, this.el);
    button.disabled = true;
    try {
      const view = await api(`/api/jobs/${this.id}/${action}`, { method: 'POST' });
      this.apply(view);
      if (action === 'retry') { this.note = 'Retrying'; this.watchedRunning = true; this.follow(); }
    } catch (e) {
      toast(`Could not ${action} the export: ${e.reason || e.message}`, { kind: 'error' });
    } finally {
      button.disabled = false;
    }
  }

  // The socket: snapshot on connect, then events. Down: poll, and reconnect with backoff and a new ticket.
  follow(url) {
    if (this.terminal || this.ws) return;
    this.connect(url);
  }

  async connect(url) {
    clearTimeout(this.timers.reconnect);
    if (this.terminal) return;
    if (!url) {
      try {
        url = (await api(`/api/jobs/${this.id}/ws-ticket`, { method: 'POST' })).websocket_url;
      } catch {
        this.socketDown();
        return;
      }
    }
    let ws;
    try { ws = new WebSocket(url); } catch { this.socketDown(); return; }
    this.ws = ws;
    ws.onmessage = (message) => {
      try { this.onEvent(JSON.parse(message.data)); } catch (e) { console.warn('bad socket message', e); }
    };
    ws.onopen = () => {
      this.timers.ping = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send('{"type":"ping"}'), PING_MS);
    };
    ws.onclose = () => {
      clearInterval(this.timers.ping);
      if (this.ws !== ws) return;
      this.ws = null;
      if (!this.terminal) this.socketDown();
    };
  }

  socketDown() {
    this.startPolling();
    const delay = Math.min(BACKOFF_MAX_MS, 1000 * 2 ** this.retries) * (0.5 + Math.random() / 2);
    this.retries += 1;
    clearTimeout(this.timers.reconnect);
    this.timers.reconnect = setTimeout(() => this.connect(), delay);
  }

  startPolling() {
    if (this.timers.poll) return;
    this.timers.poll = setInterval(async () => {
      try { this.apply(await api(`/api/jobs/${this.id}`)); } catch { /* the socket's reconnect reports nothing either */ }
    }, POLL_MS);
    this.render();
  }

  stopPolling() {
    if (!this.timers.poll) return;
    clearInterval(this.timers.poll);
    this.timers.poll = null;
    this.render();
  }

  finished() {
    this.stopPolling();
    clearTimeout(this.timers.reconnect);
    clearInterval(this.timers.ping);
    if (this.ws) { const ws = this.ws; this.ws = null; ws.close(1000, 'finished'); }
    if (!this.watchedRunning) return;
    this.watchedRunning = false;
    const name = `${TYPE_WORDS[this.view.type] || 'Export'} ${this.id.slice(0, 8)}`;
    announce(this.view.status === 'complete' ? `${name} is ready to watch and download`
      : this.view.status === 'error' ? `${name} failed: ${this.view.error}` : `${name} was cancelled`);
    if (this.view.status === 'complete') this.showResult();
    // Seen here, so the next visit does not report it as "completed while you were away".
    api('/api/exports/seen', { method: 'POST', body: { job_ids: [this.id] } }).catch(() => {});
    api(`/api/jobs/${this.id}`).then((view) => this.apply(view)).catch(() => {});  // final timings
  }
}

const jobs = {
  cards: new Map(),
  add(view) {
    let card = this.cards.get(view.job_id);
    if (card) { card.apply(view); return card; }
    card = new JobCard(view);
    this.cards.set(view.job_id, card);
    const list = $('#jobs');
    $('.empty', list)?.remove();
    list.insertBefore(card.el, firstOlder(list, view));  // newest first
    return card;
  },
};

function firstOlder(list, view) {
  const created = view.timing?.created_at || '';
  const createdOf = (li) => jobs.cards.get(li.dataset.jobId)?.view.timing?.created_at || '';
  return [...list.children].find((li) => createdOf(li) < created) || null;
}

async function downloadJob(jobId) {
  try {
    const { url } = await api(`/api/jobs/${jobId}/download`);
    const a = document.createElement('a');
    a.href = url;
    a.download = `export-${jobId}.mp4`;
    document.body.append(a);
    a.click();
    a.remove();
  } catch (e) {
    toast(`Could not download the export: ${e.reason || e.message}`, { kind: 'error' });
  }
}

// ------------------------------------------------------------------ start-up and recovery

async function loadJobs() {
  const { jobs: list } = await api('/api/jobs?limit=50');
  for (const view of list) jobs.add(view);
}

async function recover() {
  const { active, finished_while_away: away } = await api('/api/exports/active');
  for (const view of active) jobs.add(view).follow();
  for (const view of away) {
    jobs.add(view);
    const name = `${TYPE_WORDS[view.type] || 'Export'} ${view.job_id.slice(0, 8)}`;
    if (view.status === 'complete') {
      toast('Export completed while you were away', {
        kind: 'success', detail: name,
        actions: [{ label: 'Download', primary: true, onClick: () => downloadJob(view.job_id) }],
      });
    } else if (view.status === 'error') {
      toast('An export failed while you were away', { kind: 'error', detail: `${name}: ${view.error || 'no reason given'}` });
    }
  }
  if (away.length) await api('/api/exports/seen', { method: 'POST', body: { job_ids: away.map((v) => v.job_id) } });
}

// The deployment's upload settings (GET /api/config); files over the threshold go up in parts.
async function loadConfig() {
  const config = await deploymentConfig();
  document.documentElement.dataset.multipartThreshold ||= String(config.multipart_threshold_bytes);
}

async function start() {
  $('#file').addEventListener('change', onFileChosen);
  form().addEventListener('submit', onSubmit);
  editor = new Editor({ api, nameOf: (key) => library.videos.find((v) => v.key === key)?.name || key.split('/').pop() });
  const fillJson = () => {
    try { $('#json').value = JSON.stringify(editor.spec(), null, 2); formError(''); } catch (e) { formError(e.message); }
  };
  $('#json-from-form').addEventListener('click', fillJson);
  $('#advanced').addEventListener('toggle', (e) => { if (e.target.open && !$('#json').value) fillJson(); });

  for (let attempt = 1; ; attempt += 1) {
    try {
      const shared = sharedVideo((await signIn()).link);
      await loadConfig();
      library.load();
      if (shared) library.add(shared);
      await loadJobs();
      await recover();
      document.body.dataset.ready = 'true';
      return;
    } catch (e) {
      const wait = Math.min(30, 2 ** attempt);
      toast(`Could not load your exports: ${e.reason || e.message}. Trying again in ${wait} s.`, { kind: 'error', timeoutMs: wait * 1000 });
      await new Promise((r) => setTimeout(r, wait * 1000));
    }
  }
}

start();
