// django_chatkit admin: the transcript page follows its thread live (docs/live.md, "Takeover").
//
// Loaded only on a transcript's newest page, and only where the site serves the thread
// websocket with a channel layer (the page then renders data-live-socket). On each notice of
// the thread it fetches the transcript after the newest item it shows (the admin's
// transcript/new/ view, same session and permissions) and adds the new entries, replacing an
// entry it already shows (an item saved again, a run that finished). One fetch at a time;
// notices arriving meanwhile make one more. The socket (live-socket.js) reconnects with capped
// backoff and jitter, not after close codes 4401 (signed out), 4404 (not allowed, no such
// thread) and 4503 (no layer).
//
// The socket asks to watch (?watch=1): while the agent streams an answer, the server sends its
// text as it grows (answer.progress: item id, offset in UTF-16 code units, delta; staff only,
// django_chatkit/live/progress.py). The page shows it as plain text in a provisional entry,
// which the stored item replaces when its notice comes (same id); answer.ended fetches once more
// and drops what no stored item replaced.
(() => {
  const panel = document.getElementById('ck-takeover');
  const timeline = document.querySelector('.ck-transcript .ck-timeline');
  if (
    !panel ||
    !timeline ||
    !panel.dataset.liveSocket ||
    typeof window.WebSocket !== 'function' ||
    typeof window.chatkitFollow !== 'function'
  ) {
    return;
  }
  const FINAL_CODES = new Set([4401, 4404, 4503]);
  let cursor = panel.dataset.liveCursor || '';
  let fetching = false;
  let pending = false;
  // Provisional answers: item id -> the <li> and the text shown so far.
  const provisional = new Map();
  // Item ids whose turn ended: dropped after the next fetch unless it replaced them.
  let ended = [];

  const showState = (takenOver) => {
    panel.classList.toggle('ck-taken-over', takenOver);
    for (const node of panel.querySelectorAll('[data-state]')) {
      node.hidden = (node.dataset.state === 'taken') !== takenOver;
    }
  };

  const merge = (html) => {
    const doc = new DOMParser().parseFromString(html, 'text/html');
    const entries = doc.querySelectorAll('.ck-timeline > li[id]');
    for (const entry of entries) {
      const shown = document.getElementById(entry.id);
      const node = document.importNode(entry, true);
      provisional.delete(entry.id);
      if (shown && shown.parentNode === timeline) {
        shown.replaceWith(node);
      } else {
        // Stored items come before the answers still being written.
        const first = timeline.querySelector(':scope > li.ck-provisional');
        timeline.insertBefore(node, first);
      }
    }
    if (entries.length) {
      const empty = document.querySelector('.ck-transcript .ck-empty');
      if (empty) {
        empty.remove();
      }
      const detail = { count: entries.length };
      document.dispatchEvent(new CustomEvent('chatkit:transcript-grew', { detail }));
    }
  };

  const refresh = () => {
    if (fetching) {
      pending = true;
      return;
    }
    pending = false;
    fetching = true;
    const url = new URL(panel.dataset.liveFragment, window.location.href);
    if (cursor) {
      url.searchParams.set('after', cursor);
    }
    fetch(url.href, { credentials: 'same-origin', headers: { Accept: 'text/html' } })
      .then((response) => {
        if (!response.ok) {
          throw new Error(String(response.status));
        }
        const next = response.headers.get('X-Chatkit-Cursor');
        const takenOver = response.headers.get('X-Chatkit-Taken-Over') === '1';
        return response.text().then((html) => {
          merge(html);
          cursor = next || cursor;
          showState(takenOver);
        });
      })
      .catch(() => {
        // A failed fetch is retried on the next notice.
      })
      .finally(() => {
        fetching = false;
        if (pending) {
          refresh();
          return;
        }
        dropEnded();
      });
  };

  const dropEnded = () => {
    for (const id of ended) {
      const shown = provisional.get(id);
      if (shown) {
        shown.node.remove();
        provisional.delete(id);
      }
    }
    ended = [];
  };

  const grow = (message) => {
    const id = String(message.item_id || '');
    const offset = Number(message.offset);
    const delta = String(message.delta || '');
    if (!id || !Number.isInteger(offset) || offset < 0) {
      return;
    }
    let shown = provisional.get(id);
    if (!shown) {
      if (document.getElementById(id)) {
        return; // stored and shown already: this came late
      }
      if (offset !== 0) {
        return; // the start was missed: the server starts again for the next watcher
      }
      const node = document.createElement('li');
      node.id = id;
      node.className = 'ck-item ck-type-assistant_message ck-provisional';
      const meta = document.createElement('div');
      meta.className = 'ck-meta';
      const who = document.createElement('span');
      who.className = 'ck-who';
      who.textContent = panel.dataset.liveWriting || '';
      meta.appendChild(who);
      const bubble = document.createElement('div');
      bubble.className = 'ck-bubble ck-assistant';
      const text = document.createElement('div');
      text.className = 'ck-streaming-text';
      bubble.appendChild(text);
      node.append(meta, bubble);
      timeline.appendChild(node);
      const empty = document.querySelector('.ck-transcript .ck-empty');
      if (empty) {
        empty.remove();
      }
      shown = { node, text, value: '' };
      provisional.set(id, shown);
    }
    if (offset > shown.value.length) {
      return; // a message was lost: wait for the stored item
    }
    // Plain text (textContent): what the model writes is never HTML here.
    shown.value = shown.value.slice(0, offset) + delta;
    shown.text.textContent = shown.value;
    const detail = { itemId: id, length: shown.value.length };
    document.dispatchEvent(new CustomEvent('chatkit:transcript-progress', { detail }));
  };

  const url = new URL(panel.dataset.liveSocket, window.location.href);
  url.searchParams.set('watch', '1');
  window.chatkitFollow(url.href, {
    finalCodes: FINAL_CODES,
    onSubscribed: (reconnected) => {
      if (reconnected) {
        refresh(); // what changed while the socket was down
      }
      panel.dataset.liveSubscribed = '1';
      document.dispatchEvent(new CustomEvent('chatkit:transcript-subscribed'));
    },
    onNotice: (notice) => {
      if (notice.event === 'answer.progress') {
        grow(notice);
        return;
      }
      if (notice.event === 'answer.ended') {
        ended = ended.concat(Array.isArray(notice.item_ids) ? notice.item_ids.map(String) : []);
      }
      refresh();
    },
    onClosed: () => {
      delete panel.dataset.liveSubscribed;
    },
  });
})();
