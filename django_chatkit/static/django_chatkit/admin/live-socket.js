// django_chatkit admin: the websocket the live pages follow (docs/live.md), shared by the
// transcript page (transcript-live.js) and the "Live conversations" page (live-list.js).
//
// window.chatkitFollow(url, handlers) opens a socket to url (a path or URL; ws: or wss: as the
// page) and keeps it open: after a close it reconnects with capped exponential backoff and
// jitter, except after the close codes in handlers.finalCodes (signed out, not allowed, no
// channel layer). Each JSON message goes to handlers.onNotice, but the first, "subscribed",
// which goes to handlers.onSubscribed(reconnected): reconnected is true when the socket was
// down meanwhile, so that the page fetches what it missed. handlers.onClosed(final) is told of
// every close. A message that is not JSON is ignored.
(() => {
  const RETRY_BASE_MS = 1000;
  const RETRY_MAX_MS = 60000;

  window.chatkitFollow = (url, handlers) => {
    let attempt = 0;
    const connect = () => {
      const target = new URL(url, window.location.href);
      target.protocol = target.protocol === 'https:' ? 'wss:' : 'ws:';
      const ws = new WebSocket(target.href);
      ws.addEventListener('message', (event) => {
        let notice;
        try {
          notice = JSON.parse(event.data);
        } catch {
          return;
        }
        if (!notice) {
          return;
        }
        if (notice.event === 'subscribed') {
          const reconnected = attempt > 0;
          attempt = 0;
          handlers.onSubscribed(reconnected);
          return;
        }
        handlers.onNotice(notice);
      });
      ws.addEventListener('close', (event) => {
        const final = handlers.finalCodes.has(event.code);
        handlers.onClosed(final);
        if (final) {
          return;
        }
        const step = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** attempt);
        attempt += 1;
        window.setTimeout(connect, step / 2 + Math.random() * (step / 2));
      });
    };
    connect();
  };
})();
