// A stand-in for OpenAI's <openai-chatkit>, whose script cannot load where the tests run.
// It records every setOptions call and talks to the endpoint the way the real widget does:
// each protocol request is a POST of JSON to options.api.url through options.api.fetch, a
// streamed answer is read to its end, and a new thread is announced with chatkit.thread.change.
// A hosted widget (api.getClientSecret) asks for its client secret at once, as the real one
// does; refreshSecret() asks again with the current secret, as the real one does when that
// secret is about to expire.
// It draws a plain placeholder of the chat so that screenshots show what was configured.
// (Included into a template: no double braces or brace-percent pairs in here.)
class ChatKitStandIn extends HTMLElement {
  constructor() {
    super();
    this.setOptionsCalls = [];
    this.fetchUpdatesCalls = 0;
    this.options = null;
    this.secretCalls = []; // the currentSecret argument of each getClientSecret call
    this.secrets = [];
    this.secretErrors = [];
  }

  // The real widget reloads the thread it shows; the stand-in counts the calls.
  fetchUpdates() {
    this.fetchUpdatesCalls += 1;
    return Promise.resolve();
  }

  setOptions(options) {
    const call = {
      options: JSON.parse(JSON.stringify(options)), // functions are dropped: recorded below
      fetchIsFunction: typeof options?.api?.fetch === 'function',
    };
    const hosted = typeof options?.api?.getClientSecret === 'function';
    if (hosted) {
      call.getClientSecretIsFunction = true;
    }
    this.setOptionsCalls.push(call);
    this.options = options;
    this.draw();
    this.dispatchEvent(new CustomEvent('chatkit.ready'));
    if (hosted) {
      this.refreshSecret().catch(() => {});
    }
  }

  async refreshSecret() {
    const current = this.secrets.at(-1) ?? null;
    this.secretCalls.push(current);
    try {
      const secret = await this.options.api.getClientSecret(current);
      this.secrets.push(secret);
      return secret;
    } catch (error) {
      this.secretErrors.push(String(error));
      throw error;
    }
  }

  async send(type, params) {
    const { url, fetch: send } = this.options.api;
    const response = await send(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ type, params }),
    });
    const contentType = response.headers.get('Content-Type') || '';
    if (!contentType.startsWith('text/event-stream')) {
      return { status: response.status, contentType, body: await response.json() };
    }
    this.dispatchEvent(new CustomEvent('chatkit.response.start'));
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    const events = [];
    let buffer = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        break;
      }
      buffer += decoder.decode(value, { stream: true });
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = JSON.parse(frame.replace(/^data: /, ''));
        events.push(event);
        if (event.type === 'thread.created') {
          this.dispatchEvent(
            new CustomEvent('chatkit.thread.change', { detail: { threadId: event.thread.id } }),
          );
        }
        end = buffer.indexOf('\n\n');
      }
    }
    this.dispatchEvent(new CustomEvent('chatkit.response.end'));
    return { status: response.status, contentType, events, rest: buffer };
  }

  // The user starts a new conversation in the widget.
  newThread() {
    this.dispatchEvent(new CustomEvent('chatkit.thread.change', { detail: { threadId: null } }));
  }

  draw() {
    const options = this.options;
    const dark = (options.theme?.colorScheme ?? options.theme) === 'dark';
    const accent = options.theme?.color?.accent?.primary ?? '#444';
    const box = (tag, text, style) => {
      const node = document.createElement(tag);
      if (text) {
        node.textContent = text;
      }
      Object.assign(node.style, style || {});
      return node;
    };
    const frame = box('div', '', {
      boxSizing: 'border-box',
      height: '100%',
      display: 'flex',
      flexDirection: 'column',
      justifyContent: 'space-between',
      padding: '1rem',
      borderRadius: '1rem',
      border: `2px dashed ${accent}`,
      fontFamily: 'sans-serif',
      background: dark ? '#1e1e1e' : '#ffffff',
      color: dark ? '#f0f0f0' : '#1e1e1e',
    });
    const top = box('div');
    top.append(
      box('div', 'ChatKit stand-in (the real widget loads from OpenAI)', {
        fontSize: '0.75rem',
        textTransform: 'uppercase',
        letterSpacing: '0.05em',
        opacity: '0.6',
      }),
    );
    top.append(
      box('div', options.startScreen?.greeting ?? 'What can I help with today?', {
        fontSize: '1.4rem',
        margin: '1rem 0',
      }),
    );
    const prompts = box('div', '', { display: 'flex', gap: '0.5rem', flexWrap: 'wrap' });
    for (const prompt of options.startScreen?.prompts ?? []) {
      prompts.append(
        box('span', prompt.label, {
          border: `1px solid ${accent}`,
          color: accent,
          borderRadius: '999px',
          padding: '0.25rem 0.75rem',
          fontSize: '0.9rem',
        }),
      );
    }
    top.append(prompts);
    const bottom = box('div');
    bottom.append(
      box('div', options.composer?.placeholder ?? 'Message the AI', {
        border: '1px solid #999',
        borderRadius: '999px',
        padding: '0.6rem 1rem',
        opacity: '0.7',
      }),
    );
    const facts = [
      options.api.url
        ? `endpoint ${options.api.url}`
        : `hosted workflow ${this.dataset.chatkitWorkflow}`,
      `domain key ${options.api.domainKey}`,
      `history ${options.history?.enabled ? 'on' : 'off'}`,
      `feedback ${options.threadItemActions?.feedback ? 'on' : 'off'}`,
      `attachments ${options.composer?.attachments?.enabled ? 'on' : 'off'}`,
      options.initialThread ? `reopens ${options.initialThread}` : 'new thread',
    ];
    bottom.append(
      box('div', facts.join(' · '), {
        fontSize: '0.75rem',
        opacity: '0.6',
        marginTop: '0.5rem',
      }),
    );
    frame.append(top, bottom);
    this.replaceChildren(frame);
  }
}

customElements.define('openai-chatkit', ChatKitStandIn);
