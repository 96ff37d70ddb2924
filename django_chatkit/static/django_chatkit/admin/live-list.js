// django_chatkit admin: the "Live conversations" page follows every thread (docs/admin.md).
//
// Loaded only where the site serves the staff websocket with a channel layer (the page then
// renders data-live-socket). A notice says only that a thread changed: the page then fetches
// its rows again from the admin (data-live-rows, same session and permission) and shows them,
// never anything from the socket. At most one fetch at a time and one a second: notices
// arriving meanwhile make one more. The socket (live-socket.js) reconnects with capped backoff
// and jitter, not after close codes 4401 (signed out), 4403 (not allowed) and 4503 (no channel
// layer); once subscribed again, it fetches what it missed.
(() => {
  const module = document.getElementById('chatkit-live');
  const body = document.getElementById('chatkit-live-rows');
  if (
    !module ||
    !body ||
    !module.dataset.liveSocket ||
    typeof window.WebSocket !== 'function' ||
    typeof window.chatkitFollow !== 'function'
  ) {
    return;
  }
  const FINAL_CODES = new Set([4401, 4403, 4503]);
  const MIN_INTERVAL_MS = 1000;
  let fetching = false;
  let pending = false;
  let lastFetch = 0;

  const showState = (state) => {
    for (const node of document.querySelectorAll('[data-live-state]')) {
      node.hidden = node.dataset.liveState !== state;
    }
    module.dataset.liveStatus = state;
  };

  const refresh = () => {
    if (fetching) {
      pending = true;
      return;
    }
    const wait = lastFetch + MIN_INTERVAL_MS - Date.now();
    if (wait > 0) {
      fetching = true; // holds later notices until this fetch
      window.setTimeout(() => {
        fetching = false;
        refresh();
      }, wait);
      return;
    }
    pending = false;
    fetching = true;
    lastFetch = Date.now();
    const url = new URL(module.dataset.liveRows, window.location.href);
    fetch(url.href, { credentials: 'same-origin', headers: { Accept: 'text/html' } })
      .then((response) => {
        if (!response.ok) {
          throw new Error(String(response.status));
        }
        return response.text();
      })
      .then((html) => {
        // The rows come from the admin's own template (escaped there), as the page's did.
        const doc = new DOMParser().parseFromString(
          `<table><tbody>${html}</tbody></table>`,
          'text/html',
        );
        const rows = doc.querySelectorAll('tbody > tr');
        body.replaceChildren(...Array.from(rows, (row) => document.importNode(row, true)));
        document.dispatchEvent(new CustomEvent('chatkit:live-list-updated'));
      })
      .catch(() => {
        // A failed fetch is retried on the next notice.
      })
      .finally(() => {
        fetching = false;
        if (pending) {
          refresh();
        }
      });
  };

  window.chatkitFollow(module.dataset.liveSocket, {
    finalCodes: FINAL_CODES,
    onSubscribed: (reconnected) => {
      if (reconnected) {
        refresh(); // what changed while the socket was down
      }
      showState('live');
      module.dataset.liveSubscribed = '1';
    },
    onNotice: () => refresh(),
    onClosed: (final) => {
      delete module.dataset.liveSubscribed;
      showState(final ? 'unavailable' : 'offline');
    },
  });
})();
