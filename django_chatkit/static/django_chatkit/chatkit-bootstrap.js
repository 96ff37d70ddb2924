// django_chatkit: connects each <openai-chatkit> rendered by {% chatkit %} to the Django endpoint.
//
// A plain ES module, no build step. For every element it:
// - loads OpenAI's script (once per page), waits for it to define the element, and shows a
//   readable message in its place at once if that script fails to load (blocked, offline, an
//   HTTP error), or if it has not arrived after the load timeout (a request that hangs);
// - calls setOptions once with the options the server rendered (a JSON data block), plus an
//   api.fetch that sends the session cookie and Django's CSRF token, plus initialThread;
// - remembers the user's current thread in localStorage, keyed by an owner key the server
//   renders, so each user of a shared browser gets their own thread back on the next visit (a
//   new anonymous visitor has no key in the page yet: the endpoint's answers carry it, in the
//   X-ChatKit-Owner header, so their first thread is remembered too);
// - re-dispatches ChatKit's events as bubbling DOM events the site can listen to anywhere:
//   chatkit:ready, chatkit:error, chatkit:log, chatkit:response-start, chatkit:response-end,
//   chatkit:thread-change, chatkit:thread-load-start, chatkit:thread-load-end, chatkit:effect,
//   chatkit:tool-change; and its own: chatkit:configure (before setOptions; detail.options
//   may be changed, e.g. to add onClientTool), chatkit:unavailable, chatkit:subscribed and
//   chatkit:notice;
// - for a hosted widget (data-chatkit-workflow: an Agent Builder workflow OpenAI runs), sets
//   api.getClientSecret instead, which asks the site's session endpoint (data-chatkit-session)
//   for a client secret, with the session cookie and the CSRF token; the widget calls it when
//   it starts and again, with the current secret, when that one is about to expire. A refusal
//   is logged to the console with the endpoint's reason and dispatched as chatkit:error;
// - with live updates (data-chatkit-live, rendered only where the site serves the websocket and
//   has a channel layer: docs/live.md), subscribes to the thread it shows and calls the widget's
//   fetchUpdates() when that thread changes elsewhere (a staff member locks it, say).

const RELAYED_EVENTS = {
  'chatkit.ready': 'chatkit:ready',
  'chatkit.error': 'chatkit:error',
  'chatkit.log': 'chatkit:log',
  'chatkit.response.start': 'chatkit:response-start',
  'chatkit.response.end': 'chatkit:response-end',
  'chatkit.thread.change': 'chatkit:thread-change',
  'chatkit.thread.load.start': 'chatkit:thread-load-start',
  'chatkit.thread.load.end': 'chatkit:thread-load-end',
  'chatkit.effect': 'chatkit:effect',
  'chatkit.tool.change': 'chatkit:tool-change',
};
const THREAD_KEY_PREFIX = 'django_chatkit:thread:';
const DEFAULT_TIMEOUT_MS = 15000;
const UNAVAILABLE_CLASS = 'django-chatkit-unavailable';
const OWNER_HEADER = 'X-ChatKit-Owner';
// Marks a started element on the element itself, not in this module's memory: the module may be
// loaded twice by different URLs (a hashed static file name, a site's own import with another
// query string), and each copy is a module of its own that would start every widget again. A
// property rather than an attribute, because an attribute is copied with the HTML (cloneNode,
// htmx's history snapshots), and the copy, a new element, would then never start.
const STARTED = Symbol.for('django_chatkit.started');
// Set on OpenAI's script element once it failed to load, for widgets started after that (htmx);
// on the element for the same reason as STARTED.
const CDN_FAILED = Symbol.for('django_chatkit.cdnFailed');

// Live updates: reconnection delays grow from LIVE_RETRY_BASE_MS to LIVE_RETRY_MAX_MS.
const LIVE_RETRY_BASE_MS = 1000;
const LIVE_RETRY_MAX_MS = 60000;
// Close codes after which retrying cannot help (docs/live.md): signed out, not this visitor's
// thread (or none), or no channel layer. 4429 (too many sockets) is retried, later and later.
const LIVE_FINAL_CODES = new Set([4401, 4404, 4503]);
const LIVE_SUBSCRIBED = 'subscribed';

function emit(element, type, detail) {
  element.dispatchEvent(new CustomEvent(type, { bubbles: true, detail }));
}

// The fetch ChatKit uses for every request to the endpoint: the session cookie goes along
// (same-origin credentials) and so does the CSRF token, but only to this site's own origin,
// never to another host (an upload URL on S3, say). onOwnerKey, if given, is called with the
// owner key the endpoint's answers carry (see threadMemory).
export function chatkitFetch(csrfToken, onOwnerKey) {
  return async (input, init = {}) => {
    const request = input instanceof Request ? input : null;
    const url = new URL(request ? request.url : String(input), document.baseURI);
    const sameOrigin = url.origin === window.location.origin;
    const headers = new Headers(init.headers ?? request?.headers);
    if (csrfToken && sameOrigin) {
      headers.set('X-CSRFToken', csrfToken);
    }
    const response = await window.fetch(input, { ...init, headers, credentials: 'same-origin' });
    const ownerKey = sameOrigin ? response.headers.get(OWNER_HEADER) : null;
    if (ownerKey && onOwnerKey) {
      onOwnerKey(ownerKey);
    }
    return response;
  };
}

// api.getClientSecret of a hosted widget: a new secret from the site's session endpoint, which
// mints it for this widget's workflow (if the site allows that workflow) and the signed-in user.
// The current secret (null the first time) stays in the page: the endpoint has no use for it.
// The API key never reaches the browser; the secret is all it gets, and only the widget keeps it.
export function hostedClientSecret(element, onOwnerKey) {
  const url = new URL(element.dataset.chatkitSession, document.baseURI).href;
  const workflow = element.dataset.chatkitWorkflow;
  const csrfToken = element.dataset.chatkitCsrfToken;
  const fail = (message, detail) => {
    const error = new Error(
      `django_chatkit: no client secret for workflow ${workflow}: ${message}`,
    );
    console.error(error.message);
    emit(element, 'chatkit:error', { error, workflow, ...detail });
    return error;
  };
  return async (currentSecret) => {
    const headers = new Headers({ 'Content-Type': 'application/json' });
    if (csrfToken) {
      headers.set('X-CSRFToken', csrfToken);
    }
    let response;
    try {
      response = await window.fetch(url, {
        method: 'POST',
        headers,
        credentials: 'same-origin',
        body: JSON.stringify({ workflow }),
      });
    } catch (networkError) {
      throw fail(`${url} could not be reached (${networkError})`, {
        refresh: currentSecret != null,
      });
    }
    let body = null;
    try {
      body = await response.json();
    } catch {
      // Not JSON (a proxy's error page): reported by status below.
    }
    if (!response.ok || typeof body?.client_secret !== 'string') {
      const reason = body?.error?.message ?? 'the answer holds no client_secret';
      const code = body?.error?.code ?? null;
      const retryAfter = response.headers.get('Retry-After');
      throw fail(
        `${url} answered ${response.status}${code ? ` ${code}` : ''}: ${reason}` +
          (retryAfter ? ` (retry after ${retryAfter} s)` : ''),
        { status: response.status, code, retryAfter, refresh: currentSecret != null },
      );
    }
    const ownerKey = response.headers.get(OWNER_HEADER);
    if (ownerKey && onOwnerKey) {
      onOwnerKey(ownerKey);
    }
    return body.client_secret;
  };
}

// The thread memory of one element, in localStorage under its owner key and element id.
// The key is the one the page rendered, or a newer one an answer of the endpoint carried: a new
// anonymous visitor has none in the page (rendering it makes no session); the endpoint makes
// their owner token when it accepts their first request and sends the key with that answer.
// Every thread id ChatKit announces came in such an answer, through chatkitFetch, which hands
// the key over before ChatKit reads the body: the key is known by the time a thread is.
function threadMemory(element) {
  if (element.dataset.chatkitRememberThread !== 'true') {
    return null;
  }
  let owner = element.dataset.chatkitOwner || '';
  const key = () => `${THREAD_KEY_PREFIX}${owner}:${element.id}`;
  // localStorage throws when storage is disabled; the chat then simply forgets.
  return {
    get() {
      if (!owner) {
        return null;
      }
      try {
        return window.localStorage.getItem(key());
      } catch {
        return null;
      }
    },
    set(threadId) {
      if (!owner) {
        return;
      }
      try {
        if (threadId) {
          window.localStorage.setItem(key(), threadId);
        } else {
          window.localStorage.removeItem(key());
        }
      } catch {
        // Storage disabled or full: nothing to remember with.
      }
    },
    setOwner(ownerKey) {
      owner = ownerKey;
      element.dataset.chatkitOwner = ownerKey;
    },
  };
}

function readOptions(element) {
  const block = document.getElementById(element.dataset.chatkitOptions);
  if (!block) {
    throw new Error(`django_chatkit: no options block #${element.dataset.chatkitOptions}`);
  }
  return JSON.parse(block.textContent);
}

// Styled through the CSSOM, which a Content-Security-Policy without 'unsafe-inline' allows
// (style attributes in the HTML it would block).
function showUnavailable(element, reason) {
  if (element.chatkitUnavailable) {
    return;
  }
  const note = document.createElement('div');
  note.className = UNAVAILABLE_CLASS;
  note.setAttribute('role', 'alert');
  note.textContent = element.dataset.chatkitUnavailable || 'The chat could not be loaded.';
  Object.assign(note.style, {
    boxSizing: 'border-box',
    minHeight: '6rem',
    padding: '1rem 1.25rem',
    border: '1px solid #d0d0d0',
    borderRadius: '0.5rem',
    background: '#fafafa',
    color: '#333',
  });
  element.chatkitUnavailable = note;
  element.style.display = 'none';
  element.after(note);
  emit(element, 'chatkit:unavailable', { reason });
}

// The script may still arrive after the message was shown (a slow network): use it then.
function hideUnavailable(element) {
  const note = element.chatkitUnavailable;
  if (note) {
    note.remove();
    element.chatkitUnavailable = null;
    element.style.display = 'block';
  }
}

// OpenAI's script, inserted here rather than rendered as a <script> by the tag, so that the
// listener for its failure is attached before its request can fail. Rendered `async` before
// this (deferred) module, it could fail before the module ran: the error event was missed and
// the message waited for the timeout. Rendered `defer` after the module it would be in order,
// but it would then hold back DOMContentLoaded, and every deferred or module script after it,
// for as long as OpenAI's CDN takes: a CDN that hangs would hang the site's own scripts. The
// tag renders <link rel="preload" data-chatkit-cdn> instead, which starts the download as
// early as a <script> would, and carries the URL and the CSP nonce for the script made here.
// One script per page, whichever copy of this module (or the site) put it there first.
function cdnScript() {
  const existing = document.querySelector('script[data-chatkit-cdn]');
  if (existing) {
    return existing;
  }
  const link = document.querySelector('link[data-chatkit-cdn]');
  if (!link) {
    return null; // the site loads OpenAI's script itself
  }
  const script = document.createElement('script');
  script.src = link.href;
  script.nonce = link.nonce; // the property: browsers hide the nonce attribute's value
  script.dataset.chatkitCdn = '';
  script.addEventListener('error', () => {
    script[CDN_FAILED] = true;
  });
  (document.head ?? document.documentElement).append(script);
  return script;
}

function relayEvents(element) {
  for (const [chatkitName, domName] of Object.entries(RELAYED_EVENTS)) {
    element.addEventListener(chatkitName, (event) => emit(element, domName, event.detail));
  }
}

async function start(element) {
  const options = readOptions(element);
  element.style.display = 'block';
  if (element.dataset.chatkitHeight) {
    element.style.height = element.dataset.chatkitHeight;
  }
  relayEvents(element);
  const live = followThread(element);
  const memory = threadMemory(element);
  if (memory) {
    element.addEventListener('chatkit.thread.change', (event) => {
      memory.set(event.detail?.threadId ?? null);
    });
  }

  const timeout = Number(element.dataset.chatkitLoadTimeout) || DEFAULT_TIMEOUT_MS;
  const timer = window.setTimeout(() => showUnavailable(element, 'timeout'), timeout);
  // Fails fast when the script's request fails (an error event is never dispatched during
  // the synchronous code that inserts the script, so this listener is in time); the timer
  // covers a request that hangs.
  const script = cdnScript();
  if (script?.[CDN_FAILED]) {
    showUnavailable(element, 'error');
  } else {
    script?.addEventListener('error', () => showUnavailable(element, 'error'));
  }

  await customElements.whenDefined('openai-chatkit');
  window.clearTimeout(timer);
  hideUnavailable(element);

  const api = element.dataset.chatkitWorkflow
    ? { ...options.api, getClientSecret: hostedClientSecret(element, memory?.setOwner) }
    : {
        ...options.api,
        url: new URL(options.api.url, document.baseURI).href,
        fetch: chatkitFetch(element.dataset.chatkitCsrfToken, memory?.setOwner),
      };
  const fullOptions = { ...options, api };
  const remembered = memory?.get();
  if (remembered) {
    fullOptions.initialThread = remembered;
  }
  emit(element, 'chatkit:configure', { options: fullOptions });
  element.setOptions(fullOptions);
  // The thread it opens with, in case the widget announces no change for it.
  if (fullOptions.initialThread) {
    live?.watch(fullOptions.initialThread);
  }
}

// The delay before reconnection number `attempt` (0 first): exponential, capped, with jitter
// ("equal jitter": between half the step and the step), so that the sockets a server restart
// dropped do not all come back at the same instant.
export function liveRetryDelay(attempt, random = Math.random) {
  const step = Math.min(LIVE_RETRY_MAX_MS, LIVE_RETRY_BASE_MS * 2 ** Math.min(attempt, 16));
  return Math.round(step / 2 + (random() * step) / 2);
}

// The websocket URL of a thread: the rendered path, on this page's host, ws: or wss: as the page.
function liveUrl(path, threadId) {
  const url = new URL(`${path}${encodeURIComponent(threadId)}/`, window.location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.href;
}

// Follows the thread the element shows: one socket at a time, to that thread's group; a notice
// calls fetchUpdates(), once at a time (notices that arrive meanwhile make one more call), and
// not during the user's own answer, which already shows what it stores (one call after it if
// something came meanwhile). Nothing happens, and nothing is logged, when the page was rendered
// without data-chatkit-live.
function followThread(element) {
  const path = element.dataset.chatkitLive;
  if (!path || typeof window.WebSocket !== 'function') {
    return null;
  }
  let threadId = null;
  let socket = null;
  let attempt = 0;
  let retryTimer = null;
  let responding = false;
  let pending = false;
  let fetching = false;

  const refresh = () => {
    if (responding || fetching) {
      pending = true;
      return;
    }
    pending = false;
    if (typeof element.fetchUpdates !== 'function') {
      return;
    }
    fetching = true;
    Promise.resolve()
      .then(() => element.fetchUpdates())
      .catch(() => {
        // The widget reports its own request failures; the next notice tries again.
      })
      .finally(() => {
        fetching = false;
        if (pending) {
          refresh();
        }
      });
  };

  const connect = () => {
    retryTimer = null;
    const watched = threadId;
    const ws = new window.WebSocket(liveUrl(path, watched));
    socket = ws;
    ws.addEventListener('message', (event) => {
      let notice;
      try {
        notice = JSON.parse(event.data);
      } catch {
        return;
      }
      if (socket !== ws || notice?.thread_id !== watched) {
        return;
      }
      if (notice.event === LIVE_SUBSCRIBED) {
        if (attempt > 0) {
          refresh(); // what changed while the socket was down
        }
        attempt = 0;
        emit(element, 'chatkit:subscribed', { threadId: watched });
        return;
      }
      emit(element, 'chatkit:notice', notice);
      refresh();
    });
    ws.addEventListener('close', (event) => {
      if (socket !== ws) {
        return; // closed by watch(): another thread, or none
      }
      socket = null;
      if (LIVE_FINAL_CODES.has(event.code)) {
        return;
      }
      retryTimer = window.setTimeout(connect, liveRetryDelay(attempt));
      attempt += 1;
    });
  };

  const watch = (next) => {
    if (next === threadId) {
      return;
    }
    threadId = next;
    attempt = 0;
    window.clearTimeout(retryTimer);
    retryTimer = null;
    if (socket) {
      const previous = socket;
      socket = null;
      previous.close(1000);
    }
    if (threadId) {
      connect();
    }
  };

  element.addEventListener('chatkit.thread.change', (event) => {
    watch(event.detail?.threadId ?? null);
  });
  element.addEventListener('chatkit.response.start', () => {
    responding = true;
  });
  element.addEventListener('chatkit.response.end', () => {
    responding = false;
    if (pending) {
      refresh();
    }
  });
  return { watch };
}

// Starts every widget under root not started yet. Runs once when this module loads; call it
// again after inserting widgets into the page later (e.g. with htmx).
export function startChatKit(root = document) {
  for (const element of root.querySelectorAll('openai-chatkit[data-chatkit-options]')) {
    if (!element[STARTED]) {
      element[STARTED] = true;
      start(element).catch((error) => {
        console.error(error);
        emit(element, 'chatkit:error', { error });
      });
    }
  }
}

startChatKit();
