// Headless Chromium for the browser tests, driven from pytest: one JSON command per stdin line, one
// JSON answer per stdout line ({id, ok, result} or {id, ok: false, error}). Uses the system Chromium
// through playwright-core (no browser download).
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ARGS, headless: true,
});
let context = null;
let page = null;
let logs = [];
let requests = [];
// Job sockets, when a page is opened with routeSockets: passed through to the server until cut, then
// each new one is closed as soon as it opens (as when the network is down).
const JOB_SOCKET = /\/api\/jobs\/[^/?]+\/ws/;
const sockets = { cut: false, live: new Map(), log: [] };  // live: page side -> server side

function routeJobSocket(ws) {
  const path = new URL(ws.url()).pathname;
  if (sockets.cut) {
    sockets.log.push({ t: Date.now(), path, refused: true });
    ws.close({ code: 1011, reason: 'network down (test)' });
    return;
  }
  sockets.log.push({ t: Date.now(), path, refused: false });
  const server = ws.connectToServer();
  sockets.live.set(ws, server);
  ws.onClose((code, reason) => { sockets.live.delete(ws); server.close({ code, reason }); });  // the page closed it
}

function watch(p) {
  p.on('console', (m) => logs.push(`console.${m.type()}: ${m.text()}`));
  p.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  p.on('request', (r) => requests.push(`${r.method()} ${new URL(r.url()).pathname}`));
  p.on('requestfailed', (r) => logs.push(`requestfailed: ${r.method()} ${r.url().split('?')[0]} ${r.failure()?.errorText}`));
  return p;
}

async function newContext({ width = 1280, height = 900, touch = false } = {}) {
  if (context) await context.close();
  context = await browser.newContext({ acceptDownloads: true, viewport: { width, height }, hasTouch: touch, isMobile: touch });
  page = null;
  Object.assign(sockets, { cut: false, live: new Map(), log: [] });
}

const ops = {
  async newContext(options) { await newContext(options); },
  async newPage({ url, routeSockets = false }) {
    if (!context) await newContext();
    page = watch(await context.newPage());
    if (routeSockets) await page.routeWebSocket(JOB_SOCKET, routeJobSocket);
    if (url) await page.goto(url);
  },
  async cutSockets() {
    sockets.cut = true;
    for (const [ws, server] of sockets.live) {
      ws.close({ code: 1001, reason: 'network down (test)' });
      server.close({ code: 1001, reason: 'network down (test)' });
    }
    sockets.live.clear();
  },
  async restoreSockets() { sockets.cut = false; },
  async socketLog() { return { log: sockets.log, live: sockets.live.size }; },
  async closePage() { if (page) { await page.close({ runBeforeUnload: false }); page = null; } },
  async goto({ url }) { await page.goto(url); },
  async click({ selector, timeout }) { await page.locator(selector).click({ timeout }); },
  async fill({ selector, value, timeout }) { await page.locator(selector).fill(String(value), { timeout }); },
  async check({ selector, timeout }) { await page.locator(selector).check({ timeout }); },
  async select({ selector, value, timeout }) { await page.locator(selector).selectOption(value, { timeout }); },
  async setInputFiles({ selector, path, timeout }) { await page.locator(selector).setInputFiles(path, { timeout }); },
  async waitFor({ selector, state = 'visible', timeout, frame }) {
    await (frame ? page.frameLocator(frame) : page).locator(selector).first().waitFor({ state, timeout });
  },
  async waitForFunction({ expression, timeout }) {
    return (await page.waitForFunction(expression, undefined, { timeout, polling: 100 })).jsonValue();
  },
  async text({ selector, timeout }) { return page.locator(selector).first().innerText({ timeout }); },
  async evaluate({ expression }) { return page.evaluate(expression); },
  async frameText({ frame, selector, timeout }) { return page.frameLocator(frame).locator(selector).first().innerText({ timeout }); },
  async screenshot({ path, selector, fullPage = true }) {
    if (selector) await page.locator(selector).first().screenshot({ path });
    else await page.screenshot({ path, fullPage });
  },
  async download({ selector, path, timeout }) {
    const [download] = await Promise.all([page.waitForEvent('download', { timeout }), page.locator(selector).click({ timeout })]);
    await download.saveAs(path);
    return download.suggestedFilename();
  },
  // Where an element is in the viewport (scrolled into view first, as a person would), CSS pixels.
  async box({ selector, timeout }) {
    const element = page.locator(selector).first();
    await element.scrollIntoViewIfNeeded({ timeout });
    return element.boundingBox({ timeout });
  },
  async press({ key }) { await page.keyboard.press(key); },
  // A person's drag: press at `from`, move in `steps` to `to`, release (page coordinates, CSS pixels).
  async mouseDrag({ from, to, steps = 8 }) {
    await page.mouse.move(...from);
    await page.mouse.down();
    await page.mouse.move(...to, { steps });
    await page.mouse.up();
  },
  async touchDrag({ from, to, steps = 8 }) {
    const cdp = await context.newCDPSession(page);
    const touch = (type, [x, y]) => cdp.send('Input.dispatchTouchEvent', { type, touchPoints: type === 'touchEnd' ? [] : [{ x, y }] });
    await touch('touchStart', from);
    for (let i = 1; i <= steps; i += 1) {
      await touch('touchMove', [from[0] + ((to[0] - from[0]) * i) / steps, from[1] + ((to[1] - from[1]) * i) / steps]);
    }
    await touch('touchEnd', to);
    await cdp.detach();
  },
  // axe-core's violations on the page as it is: [{id, impact, help, targets}].
  async axe() {
    await page.addScriptTag({ path: AXE });
    return page.evaluate(async () => {
      const { violations } = await window.axe.run(document, { resultTypes: ['violations'] });
      return violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map((n) => n.target.join(' ')) }));
    });
  },
  async logs() { const out = logs; logs = []; return out; },
  async requests() { const out = requests; requests = []; return out; },
  async version() { return browser.version(); },
};

const out = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
out({ id: 0, ok: true, result: 'ready' });

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const { id, op, ...args } = JSON.parse(line);
  try {
    if (!ops[op]) throw new Error(`unknown op ${op}`);
    out({ id, ok: true, result: (await ops[op](args)) ?? null });
  } catch (e) {
    out({ id, ok: false, error: String(e?.message || e) });
  }
}
await browser.close();
