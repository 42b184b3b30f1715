// What every page shares: the JSON fetch helper (errors carry the API's `message`),
// the session (its CSRF token goes on every POST, PUT and DELETE), the navigation
// and the status line. docs/web.md is the contract.

let csrfToken = null;
// Set while this page logs out, so that the event socket's session_ended
// (the node tells it at once) does not race the page to the log-in page.
let loggingOut = false;

export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

async function errorFrom(response) {
  let code = 'http_' + response.status;
  let message = response.status + ' ' + response.statusText;
  try {
    const body = await response.json();
    if (body && typeof body.message === 'string' && body.message) message = body.message;
    if (body && typeof body.error === 'string') code = body.error;
  } catch {
    // Not JSON (a proxy's page, a dropped connection): the status line says enough.
  }
  const retry = response.headers.get('Retry-After');
  if (retry) message += ' (try again in ' + retry + ' s)';
  return new ApiError(response.status, code, message, retry);
}

// Calls the API. `body` is sent as JSON unless it is a Blob (then with its own type).
// Answers the parsed JSON, or null for an empty answer; throws ApiError otherwise.
export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  if (body instanceof Blob) {
    headers['Content-Type'] = body.type.split(';')[0] || 'application/octet-stream';
    init.body = body;
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'network', 'The node could not be reached. Check the connection and try again.');
  }
  if (!response.ok) throw await errorFrom(response);
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

function remember(session) {
  csrfToken = session && session.csrf_token ? session.csrf_token : null;
  return session;
}

// Log-in by SCRAM-SHA-256 (docs/web.md, "Log in"): the page derives the slow
// SaltedPassword with WebCrypto's PBKDF2 and sends only a proof; the node
// proves itself in turn. The password never leaves the page, except in the
// one password log-in an account made before SCRAM needs to migrate.
const encoder = new TextEncoder();
// What the node makes for new accounts in production; it refuses fewer.
const SCRAM_ITERATIONS = 600000;

function toBase64(bytes) {
  let text = '';
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text);
}

function fromBase64(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

async function hmac(keyBytes, message) {
  const key = await crypto.subtle.importKey('raw', keyBytes, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await crypto.subtle.sign('HMAC', key, encoder.encode(message)));
}

async function saltedPassword(password, salt, iterations) {
  const key = await crypto.subtle.importKey('raw', encoder.encode(password), 'PBKDF2', false, ['deriveBits']);
  return new Uint8Array(await crypto.subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, key, 256));
}

// What a registration sends instead of the password: salt, iterations, StoredKey, ServerKey.
export async function scramCredentials(password) {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const salted = await saltedPassword(password, salt, SCRAM_ITERATIONS);
  const storedKey = new Uint8Array(await crypto.subtle.digest('SHA-256', await hmac(salted, 'Client Key')));
  const serverKey = await hmac(salted, 'Server Key');
  return '$scram-sha256$i=' + SCRAM_ITERATIONS + '$' + toBase64(salt) + '$' + toBase64(storedKey) + '$' +
      toBase64(serverKey);
}

export async function logIn(id, password) {
  const nonce = toBase64(crypto.getRandomValues(new Uint8Array(18)));
  const bare = 'n=' + id.replaceAll('=', '=3D').replaceAll(',', '=2C') + ',r=' + nonce;
  const begun = await api('POST', '/api/login/begin', { client_first: 'n,,' + bare });
  const fields = Object.fromEntries(String(begun.server_first).split(',').map((part) => [part[0], part.slice(2)]));
  const iterations = Number(fields.i);
  if (!fields.r || !fields.r.startsWith(nonce) || fields.r.length <= nonce.length || !fields.s ||
      !Number.isInteger(iterations) || iterations < 4096 || iterations > 10000000) {
    throw new ApiError(0, 'protocol', 'The node answered the log-in in a way this page does not trust.');
  }
  const salted = await saltedPassword(password, fromBase64(fields.s), iterations);
  const clientKey = await hmac(salted, 'Client Key');
  const storedKey = new Uint8Array(await crypto.subtle.digest('SHA-256', clientKey));
  const withoutProof = 'c=biws,r=' + fields.r;
  const auth = bare + ',' + begun.server_first + ',' + withoutProof;
  const signature = await hmac(storedKey, auth);
  const proof = clientKey.map((byte, i) => byte ^ signature[i]);
  let session;
  try {
    session = await api('POST', '/api/login', { exchange: begun.exchange, client_final: withoutProof + ',p=' + toBase64(proof) });
  } catch (error) {
    if (error.status !== 401) throw error;
    // Maybe an account made before SCRAM (a scrypt hash): its one password log-in migrates it.
    return remember(await api('POST', '/api/login', { id, password }));
  }
  const expected = 'v=' + toBase64(await hmac(await hmac(salted, 'Server Key'), auth));
  remember(session);
  if (session.server_final !== expected) {
    await api('POST', '/api/logout').catch(() => {});
    remember(null);
    throw new ApiError(0, 'node_unproven', 'The node could not prove it holds this account\'s keys; not trusting it.');
  }
  return session;
}

// The current session, or null when nobody is logged in.
export async function currentSession() {
  try {
    return remember(await api('GET', '/api/session'));
  } catch (error) {
    if (error.status === 401) return null;
    throw error;
  }
}

// For pages that need a login: answers the session, or sends the browser to the log-in page.
export async function requireSession({ admin = false } = {}) {
  const session = await currentSession();
  if (!session) {
    location.assign('/index.html?next=' + encodeURIComponent(location.pathname));
    return new Promise(() => {});  // the page is being left
  }
  showSession(session);
  listenForEvents(session);
  if (admin && !session.admin) {
    throw new ApiError(403, 'forbidden', 'This page is for operators (accounts with the admin role).');
  }
  return session;
}

export function showSession(session) {
  const who = document.getElementById('who');
  if (who) who.textContent = session ? 'Logged in as ' + (session.display_name || session.id) + ' (' + session.id + ')' : '';
  for (const element of document.querySelectorAll('[data-when="admin"]')) element.hidden = !(session && session.admin);
  for (const element of document.querySelectorAll('[data-when="session"]')) element.hidden = !session;
  const waiting = document.getElementById('voicemail-waiting');
  if (waiting) waiting.hidden = !(session && session.voicemail_waiting);
}

// The node's events for this session (GET /api/events, a WebSocket): new voicemail
// lights the Voicemail link; a contact's presence goes to the page as a
// 'tsunagu-presence' event on window (detail {id, state}); a session the node
// ended sends the browser to log in.
// The last state the socket reported per contact: a page that draws its
// contacts after the first events arrived starts from these.
export const contactPresence = new Map();

// Calls (docs/web.md, "Calls from the page") travel on the same socket:
// callSignal() sends a message to the node; the node's call events arrive as
// 'tsunagu-call' events on window (detail: the message), and 'tsunagu-events-open'
// says the socket is open (calls can be placed and taken from then on).
let eventSocket = null;
const CALL_EVENTS = new Set(['available', 'call_prepared', 'ringing', 'ice_servers', 'ring', 'accepted', 'candidate',
  'ended', 'call_failed', 'call_error']);
export function callSignal(message) {
  if (!eventSocket || eventSocket.readyState !== WebSocket.OPEN) return false;
  eventSocket.send(JSON.stringify(message));
  return true;
}
export function eventsOpen() { return eventSocket !== null && eventSocket.readyState === WebSocket.OPEN; }

function listenForEvents(session) {
  if (!window.WebSocket) return;
  let socket;
  try {
    socket = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/api/events');
  } catch {
    return;  // no events: the pages still work, only without live notices
  }
  eventSocket = socket;
  socket.addEventListener('open', () => window.dispatchEvent(new CustomEvent('tsunagu-events-open')));
  socket.addEventListener('message', (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    if (CALL_EVENTS.has(message.type)) {
      window.dispatchEvent(new CustomEvent('tsunagu-call', { detail: message }));
    } else if (message.type === 'voicemail_waiting') {
      showSession({ ...session, voicemail_waiting: true });
      say('New voicemail is waiting.', 'ok');
    } else if (message.type === 'presence') {
      contactPresence.set(message.id, message.state);
      window.dispatchEvent(new CustomEvent('tsunagu-presence', { detail: { id: message.id, state: message.state } }));
    } else if (message.type === 'notice') {
      say('Notice from the node: ' + (message.reason || message.code), 'ok');
    } else if (message.type === 'session_ended' && !loggingOut) {
      // Ended elsewhere (expired, removed, logged in again): come back here after logging in.
      location.assign('/index.html?next=' + encodeURIComponent(location.pathname));
    }
  });
}

async function logOut() {
  loggingOut = true;
  try {
    await api('POST', '/api/logout');
  } catch {
    // Logged out already (expired session): the log-in page is still where to go.
  }
  csrfToken = null;
  location.assign('/index.html');
}

// The status line of a page (role="status"; errors also move focus there for screen readers).
export function say(text, kind = 'ok', where = 'message') {
  const element = document.getElementById(where);
  if (!element) return;
  element.textContent = text;
  element.className = 'message ' + kind;
}

export function sayError(error, where = 'message') {
  say(error instanceof Error ? error.message : String(error), 'error', where);
}

// Builds an element: el('li', {class: 'x'}, 'text', child, ...). Text is always text, never HTML.
export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === 'class') element.className = value;
    else if (name.startsWith('data-') || name.startsWith('aria-') || ['type', 'for', 'id', 'href', 'role', 'name', 'value', 'controls', 'preload', 'scope', 'colspan'].includes(name)) element.setAttribute(name, value === true ? '' : value);
    else element[name] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

export function formatTime(value) {
  if (value === undefined || value === null || value === '') return '';
  const date = typeof value === 'number' ? new Date(value < 1e12 ? value * 1000 : value) : new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

export function formatBytes(size) {
  if (typeof size !== 'number') return '';
  return size < 1024 ? size + ' bytes' : (size / 1024).toFixed(1) + ' KiB';
}

// Runs a page's start-up and reports what failed on its status line.
export function start(main) {
  const logout = document.getElementById('logout');
  if (logout) logout.addEventListener('click', logOut);
  const current = document.querySelector('nav a[href="' + location.pathname + '"]');
  if (current) current.setAttribute('aria-current', 'page');
  main().catch((error) => sayError(error));
}
