"""``FakeOpenAI``: a real HTTP server on loopback that answers like the OpenAI API."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeAlias

from ._http import Handler, Server
from .chatkit_sessions import ChatKitSessions
from .chatkit_threads import HostedThreads
from .endpoints import Endpoint
from .records import RecordedRequest
from .script import Reply

if TYPE_CHECKING:
    import socket

    from openai import AsyncOpenAI, OpenAI

DefaultReply: TypeAlias = Callable[[RecordedRequest], Reply | str | None] | Reply | str | None
"""What answers when no queued reply matches: a function of the request (returning a reply, or
``None`` for none), a fixed reply, or
``None`` (the request then fails with a 400 that says nothing was queued)."""

API_KEY = "test"


class FakeOpenAI:
    """A scripted OpenAI API on ``127.0.0.1`` and a random port, for offline tests.

    It serves ``POST /v1/responses`` and ``POST /v1/chat/completions``, streaming (SSE) or not,
    well enough for the real ``openai`` client and the ``openai-agents`` Runner, and ChatKit's
    hosted-mode sessions (``chatkit_sessions``) and threads (``chatkit_threads``). Each request
    takes the next queued :class:`Reply` (see ``Reply.when``), or ``default_reply``.

    Use it as a context manager, which starts a daemon server thread and stops it on exit::

        with FakeOpenAI() as fake:
            fake.queue(Reply(text="Hello there!"))
            client = AsyncOpenAI(base_url=fake.base_url, api_key="test", max_retries=0)
            ...
            [request] = fake.wait_for_requests(1)
            assert request.last_user_text == "Hi"

    Point code you don't construct at it with ``fake.env`` (``OPENAI_BASE_URL`` and
    ``OPENAI_API_KEY``). ``max_hang`` bounds how long ``hang``/``stall_after`` hold a
    connection, so a forgotten timeout cannot hang a test run.
    """

    def __init__(
        self,
        *,
        default_reply: DefaultReply = None,
        max_hang: float = 30.0,
        host: str = "127.0.0.1",
    ) -> None:
        self.max_hang = max_hang
        self.host = host
        self.default_reply: DefaultReply = default_reply
        """What answers when no queued reply matches (see :data:`DefaultReply`)."""
        self.side_requests: Callable[[RecordedRequest], bool] | None = None
        """Requests this accepts never take queued replies: they go to ``default_reply``.

        For calls made beside the conversation, concurrently with it (thread titles), so that
        the queue scripts the conversation alone, in order. The ``fake_openai`` fixture sets it
        to :func:`django_chatkit.testing.is_title_request`."""
        self.chatkit_sessions = ChatKitSessions()
        """``POST /v1/chatkit/sessions`` (and ``.../cancel``): what was minted, scripted faults."""
        # JSON endpoints with state of their own, beside the model APIs (endpoints.py).
        self._endpoints: list[Endpoint] = [self.chatkit_sessions]
        self._lock = threading.Condition()
        self._queue: list[Reply] = []
        self._records: list[RecordedRequest] = []
        self._first_index = 0  # index of _records[0]: reset() keeps indexes unique
        self._connections: dict[threading.Thread, socket.socket] = {}
        self._stopping = threading.Event()
        self.chatkit_threads = HostedThreads()
        """Hosted ChatKit threads (``/v1/chatkit/threads``): seed them, script faults."""
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Start serving (idempotent). Returns the fake, for ``fake = FakeOpenAI().start()``."""
        if self._server is None:
            self._stopping.clear()
            self._server = Server((self.host, 0), Handler, self)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"FakeOpenAI:{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection, hanging ones included (idempotent)."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()
        server.shutdown()
        with self._lock:
            connections = list(self._connections.items())
        for _, sock in connections:
            Handler.abort(sock)
        server.server_close()
        for handler_thread, _ in connections:
            handler_thread.join(timeout=2.0)
        thread.join(timeout=2.0)
        self._server = self._thread = None

    def __repr__(self) -> str:
        where = self.base_url if self.running else "stopped"
        with self._lock:
            counts = f"{len(self._records)} requests, {len(self._queue)} replies queued"
        return f"<FakeOpenAI {where} ({counts})>"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeOpenAI is not running: call start() or use it in a with.")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The server root, e.g. ``http://127.0.0.1:54321``."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What the ``openai`` client takes as ``base_url``: the root plus ``/v1``."""
        return f"{self.url}/v1"

    @property
    def env(self) -> dict[str, str]:
        """Environment variables that point a default ``openai`` client at the fake."""
        return {"OPENAI_BASE_URL": self.base_url, "OPENAI_API_KEY": API_KEY}

    def async_client(self, **kwargs: Any) -> AsyncOpenAI:
        """An ``openai.AsyncOpenAI`` for the fake; ``max_retries`` defaults to 0 so that
        scripted faults surface at once. Other keyword arguments go to the client."""
        from openai import AsyncOpenAI

        kwargs.setdefault("max_retries", 0)
        return AsyncOpenAI(base_url=self.base_url, api_key=API_KEY, **kwargs)

    def client(self, **kwargs: Any) -> OpenAI:
        """A synchronous ``openai.OpenAI`` for the fake, like :meth:`async_client`."""
        from openai import OpenAI

        kwargs.setdefault("max_retries", 0)
        return OpenAI(base_url=self.base_url, api_key=API_KEY, **kwargs)

    # -- script ------------------------------------------------------------------------------

    def queue(self, *replies: Reply | str) -> None:
        """Queue replies, answered in order; a string is shorthand for ``Reply(text=...)``."""
        with self._lock:
            self._queue.extend(Reply(text=r) if isinstance(r, str) else r for r in replies)

    @property
    def pending(self) -> list[Reply]:
        """Queued replies no request has taken yet."""
        with self._lock:
            return list(self._queue)

    def reset(self) -> None:
        """Forget queued replies, recorded requests and ChatKit sessions."""
        with self._lock:
            self._queue.clear()
            self._first_index += len(self._records)
            self._records.clear()
        self.chatkit_sessions.reset()

    # -- records -----------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Snapshots of every request received so far, in arrival order."""
        with self._lock:
            return list(self._records)

    def wait_for_requests(
        self, n: int, timeout: float = 5.0, *, finished: bool = True
    ) -> list[RecordedRequest]:
        """Block until ``n`` requests have arrived (and, with ``finished``, been fully answered,
        dropped or abandoned by the client); return all records. Raises ``TimeoutError``."""

        def ready() -> bool:
            done = [r for r in self._records if r.finished or not finished]
            return len(done) >= n

        with self._lock:
            if not self._lock.wait_for(ready, timeout):
                seen = [(r.method, r.path, r.status, r.finished) for r in self._records]
                raise TimeoutError(
                    f"FakeOpenAI expected {n} {'finished ' if finished else ''}request(s) "
                    f"within {timeout}s; saw (method, path, status, finished): {seen}"
                )
            return list(self._records)

    async def await_requests(
        self,
        n: int,
        timeout: float = 5.0,  # noqa: ASYNC109 - bounds a thread's wait, not a coroutine
        *,
        finished: bool = True,
    ) -> list[RecordedRequest]:
        """:meth:`wait_for_requests` for async tests, without blocking the event loop."""
        return await asyncio.to_thread(self.wait_for_requests, n, timeout, finished=finished)

    # -- called by the handler threads -------------------------------------------------------

    def _begin(self, method: str, path: str, headers: dict[str, str], body: Any) -> RecordedRequest:
        with self._lock:
            record = RecordedRequest(
                index=self._first_index + len(self._records),
                method=method,
                path=path,
                headers=headers,
                json=body if isinstance(body, dict) else {},
                started_at=time.monotonic(),
            )
            self._records.append(record)
            self._lock.notify_all()
            return record

    def _update(self, index: int, **changes: Any) -> None:
        with self._lock:
            position = index - self._first_index
            if 0 <= position < len(self._records):  # else forgotten by reset()
                self._records[position] = replace(self._records[position], **changes)
            self._lock.notify_all()

    def _take_reply(self, request: RecordedRequest) -> Reply | None:
        side = self.side_requests is not None and self.side_requests(request)
        with self._lock:
            for position, reply in enumerate([] if side else self._queue):
                if reply.when is None or reply.when(request):
                    return self._queue.pop(position)
        default = self.default_reply
        if callable(default):
            default = default(request)
        return Reply(text=default) if isinstance(default, str) else default

    def _endpoint(self, method: str, path: str) -> Endpoint | None:
        return next((e for e in self._endpoints if e.serves(method, path)), None)

    def _register(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections[threading.current_thread()] = sock

    def _unregister(self) -> None:
        with self._lock:
            self._connections.pop(threading.current_thread(), None)
