// How the page gets its credential. app.js calls signIn() once, authHeaders() on every API request and
// renewSignIn() after a 401; everything else about sign-in lives here.
//
// Where a token comes from, in this order (GET /api/config says which apply):
// 1. The sign-in URL's answer: the page sent the person to SIGNIN_URL with redirect_uri and a random
//    state; the identity provider sends them back with #id_token=<jwt>&state=<state>. Adopted when the
//    state is the one this tab sent.
// 2. A link carrying #token=<token> (a demo link from `make dev`, or one a host application made).
//    Never adopted silently: the page shows which account the link signs in as and waits for the
//    person to confirm, so a link made by someone else cannot switch the page to their account.
// 3. The embedding application: when the page runs in an iframe of an origin listed in EMBED_ORIGINS,
//    it posts {type: 'export:token-request'} to its parent and takes {type: 'export:token', token}
//    from it (then and whenever the parent sends a fresh one). Kept in memory only.
// 4. A token this browser kept from an earlier visit (1, 2 or 5).
// 5. Cloudflare Access (JWT_HEADER): the edge adds the credential to every request; no token here.
// 6. Anonymous sign-up (ALLOW_ANONYMOUS, local dev and demos).
// 7. Otherwise a "Sign in" button that goes to SIGNIN_URL.

const STORED = 'exportToken';
const STATE = 'exportSigninState';
const EMBED_WAIT_MS = 5000;

const current = { token: null, kind: null, config: null, embedWaiters: [], listening: false };

export function authHeaders() {
  return current.token ? { authorization: `Bearer ${current.token}` } : {};
}

async function getJson(path, init = {}) {
  const response = await fetch(path, init);
  let body = {};
  try { body = await response.json(); } catch { /* not JSON */ }
  return { ok: response.ok, status: response.status, body };
}

/** The deployment's configuration (GET /api/config), fetched once. */
export async function config() {
  if (!current.config) {
    const r = await getJson('/api/config');
    if (!r.ok) throw new Error(r.body.reason || `sign-in configuration unavailable (HTTP ${r.status})`);
    current.config = r.body;
  }
  return current.config;
}

/** The account a token signs in as ({user_id, name, anonymous}), or null when it is not valid here. */
async function accountOf(token) {
  const r = await getJson('/api/auth/me', { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return r.ok ? r.body : null;
}

function describe(account) {
  return account.anonymous ? `${account.user_id} (anonymous, this browser)` : account.name;
}

function adopt(token, kind, { store = true } = {}) {
  current.token = token;
  current.kind = kind;
  if (store) localStorage.setItem(STORED, token);
}

// ------------------------------------------------------------------ 1, 2: what the URL fragment carries

function takeFragment() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (!fragment.get('token') && !fragment.get('id_token')) return null;
  history.replaceState(null, '', location.pathname + location.search);  // never left in the address bar
  return fragment;
}

function fromSignInRedirect(fragment) {
  const expected = sessionStorage.getItem(STATE);
  sessionStorage.removeItem(STATE);
  const token = fragment.get('id_token') || fragment.get('token');
  return expected && fragment.get('state') === expected ? token : null;
}

/** Ask the person whether to sign in with a link's token; resolves true when they confirm. */
function confirmLink(linked, signedIn) {
  const dialog = document.createElement('dialog');
  dialog.id = 'signin-link';
  dialog.setAttribute('aria-labelledby', 'signin-link-title');
  const line = (tag, text, id) => {
    const el = document.createElement(tag);
    el.textContent = text;
    if (id) el.id = id;
    dialog.append(el);
    return el;
  };
  line('h2', 'Sign in from this link?', 'signin-link-title');
  line('p', `This link signs this browser in as ${describe(linked)}.`, 'signin-link-account');
  line('p', signedIn ? `You are signed in as ${describe(signedIn)}.` : 'You are not signed in yet.');
  line('p', 'Only continue if you made this link or trust who sent it: the uploads and exports you make '
    + 'next would belong to that account.').className = 'hint';
  const row = document.createElement('div');
  row.className = 'toast-actions';
  const accept = document.createElement('button');
  accept.id = 'signin-link-accept';
  accept.className = 'primary';
  accept.textContent = `Sign in as ${linked.anonymous ? linked.user_id : linked.name}`;
  const reject = document.createElement('button');
  reject.id = 'signin-link-reject';
  reject.textContent = signedIn ? 'Stay signed in as before' : 'Do not sign in with this link';
  row.append(accept, reject);
  dialog.append(row);
  document.body.append(dialog);
  return new Promise((resolve) => {
    const answer = (yes) => { dialog.close(); dialog.remove(); resolve(yes); };
    accept.addEventListener('click', () => answer(true));
    reject.addEventListener('click', () => answer(false));
    dialog.addEventListener('cancel', () => answer(false));  // Escape
    dialog.showModal();
  });
}

/** Resolves as obtain() does: {account} once the person confirms, {} for the account already signed in, or null. */
async function fromLink(fragment) {
  const token = fragment.get('token') || fragment.get('id_token');
  const linked = await accountOf(token);
  if (!linked) return null;  // not valid here: nothing to ask
  const stored = localStorage.getItem(STORED);
  const signedIn = stored ? await accountOf(stored) : null;
  const same = signedIn && signedIn.user_id === linked.user_id;  // nothing to ask: no one's account changes
  if (!same && !(await confirmLink(linked, signedIn))) return null;
  adopt(token, 'link');
  return { account: linked };
}

// ------------------------------------------------------------------ 3: the embedding application

function embedded(cfg) {
  return window.parent !== window && cfg.embed_origins.length > 0;
}

function listenToParent(cfg) {
  window.addEventListener('message', (event) => {
    if (event.source !== window.parent || !cfg.embed_origins.includes(event.origin)) return;
    if (event.data?.type !== 'export:token' || typeof event.data.token !== 'string') return;
    adopt(event.data.token, 'embed', { store: false });
    for (const resolve of current.embedWaiters.splice(0)) resolve(true);
  });
}

function askParent(cfg) {
  return new Promise((resolve) => {
    current.embedWaiters.push(resolve);
    for (const origin of cfg.embed_origins) window.parent.postMessage({ type: 'export:token-request' }, origin);
    setTimeout(() => resolve(false), EMBED_WAIT_MS);
  });
}

// ------------------------------------------------------------------ 7: the sign-in URL

export function signInUrl(cfg) {
  const state = crypto.randomUUID();
  sessionStorage.setItem(STATE, state);
  const url = new URL(cfg.signin_url, location.href);
  url.searchParams.set('redirect_uri', location.origin + location.pathname);
  url.searchParams.set('state', state);
  url.searchParams.set('nonce', crypto.randomUUID());
  return url.toString();
}

/** The control (#signin) that goes to the sign-in URL: a button, or a link beside other text. */
function signInControl(cfg, text, { link = false } = {}) {
  const control = document.createElement(link ? 'a' : 'button');
  control.id = 'signin';
  control.textContent = text;
  if (link) {
    control.href = '#';
  } else {
    control.type = 'button';
    control.className = 'primary';
  }
  control.addEventListener('click', (e) => { e.preventDefault(); location.assign(signInUrl(cfg)); });
  return control;
}

function offerSignIn(cfg) {
  const where = document.querySelector('#whoami');
  if (!cfg.signin_url) {
    where.textContent = 'Sign-in is not configured for this page (see the README: SIGNIN_URL, EMBED_ORIGINS).';
    return;
  }
  where.replaceChildren(signInControl(cfg, 'Sign in'));
}

// ------------------------------------------------------------------ the sequence

/** Finds a credential: resolves with {account} (who it signs in as, where that was asked already; else
 * signIn() asks), or null when the person has yet to sign in through the sign-in URL. */
async function obtain(cfg, fragment) {
  if (fragment) {
    const token = fromSignInRedirect(fragment);
    const account = token && (await accountOf(token));
    if (account) { adopt(token, 'signin'); return { account }; }
    if (!token) {
      const linked = await fromLink(fragment);
      if (linked) return linked;
    }
  }
  if (embedded(cfg) && (current.kind === 'embed' || (await askParent(cfg)))) return {};
  const stored = localStorage.getItem(STORED);
  if (stored) { adopt(stored, 'stored', { store: false }); return {}; }
  if (cfg.token_header !== 'authorization') {
    const account = await accountOf(null);
    if (account) { adopt(null, 'edge', { store: false }); return { account }; }
  }
  if (cfg.allow_anonymous) {
    const r = await getJson('/api/auth/anonymous', { method: 'POST' });
    if (!r.ok) throw new Error(r.body.reason || `anonymous sign-up failed (HTTP ${r.status})`);
    adopt(r.body.token, 'anonymous');
    return {};
  }
  offerSignIn(cfg);
  return null;
}

/** Signs in; resolves with {userId, label, link} once signed in (link: the confirmed link's
 * URLSearchParams, for what else it carries, or null). Never resolves while the person has yet to
 * sign in through the sign-in URL (the page is left for it). */
export async function signIn({ renewed = false } = {}) {
  const cfg = await config();
  if (embedded(cfg) && !current.listening) { listenToParent(cfg); current.listening = true; }
  const fragment = takeFragment();
  const obtained = await obtain(cfg, fragment);
  if (!obtained) return new Promise(() => {});
  const account = obtained.account || (await accountOf(current.token));
  if (!account) {
    if (renewed) throw new Error('the sign-in was not accepted by the server');
    return renewSignIn();
  }
  const link = fragment && current.kind === 'link' ? fragment : null;
  const label = `Signed in as ${describe(account)}`;
  const where = document.querySelector('#whoami');
  where.textContent = label;
  if (account.anonymous && cfg.signin_url) where.append(' · ', signInControl(cfg, 'Sign in with your account', { link: true }));
  return { userId: account.user_id, label, link };
}

/** After a 401: the credential expired or belongs to another deployment. Starts over without it. */
export async function renewSignIn() {
  if (current.kind !== 'embed') localStorage.removeItem(STORED);
  current.token = null;
  current.kind = null;
  return signIn({ renewed: true });
}
