"""The HTTP side of the fake: a thread per request, SSE frames written as HTTP/1.1 chunks.

The body is chunked, as the real API's is, so a connection closed mid-stream is a protocol
error for the client rather than a clean end of the body.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import selectors
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from . import chatkit_threads
from .chat_api import ChatCompletionBuilder
from .endpoints import Endpoint, JsonAnswer
from .records import RecordedRequest
from .responses_api import ResponseBuilder
from .script import Reply
from .wire import Frame, error_body, error_headers

if TYPE_CHECKING:
    from .server import FakeOpenAI

logger = logging.getLogger("django_chatkit.testing.fake_openai")

ROUTES = {
    "/v1/responses": "responses",
    "/v1/chat/completions": "chat",
}
# How often a waiting handler looks at the client and at stop().
_POLL = 0.05


class _ClientGone(Exception):
    """The client closed the connection."""


class _Stopping(Exception):
    """FakeOpenAI.stop() was called."""


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # concurrent tests may open many connections at once

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], fake: FakeOpenAI
    ) -> None:
        self.fake = fake
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.exception("FakeOpenAI: error while answering %s", client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server
    index: int
    _selector: selectors.BaseSelector

    @staticmethod
    def abort(sock: socket.socket) -> None:
        """Close both directions now: the client sees the connection end mid-response."""
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    @property
    def fake(self) -> FakeOpenAI:
        return self.server.fake

    def handle(self) -> None:
        # A selector rather than select(): select() fails on descriptors above 1023, which a
        # long test run can reach.
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.connection, selectors.EVENT_READ)
        self.fake._register(self.connection)
        try:
            super().handle()
        finally:
            self.fake._unregister()
            self._selector.close()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("FakeOpenAI: " + format, *args)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    # -- one request -------------------------------------------------------------------------

    def _serve(self) -> None:
        self.close_connection = True
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        url = urlsplit(self.path)
        path = url.path.rstrip("/")
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = self.fake._begin(self.command, path, headers, body)
        self.index = request.index
        query = dict(parse_qsl(url.query))
        if query:
            self.fake._update(self.index, query=query)
            request = replace(request, query=query)
        endpoint = self.fake._endpoint(self.command, path)
        try:
            if endpoint is not None:
                self._answer_endpoint(endpoint, request)
            elif chatkit_threads.serves(path):
                self._send_json(*self.fake.chatkit_threads.answer(request))
            else:
                self._answer(ROUTES.get(path) if self.command == "POST" else None, request, body)
        except (_ClientGone, ConnectionError):
            self.fake._update(self.index, disconnected=not self.fake._stopping.is_set())
        except _Stopping:
            pass
        finally:
            self.fake._update(self.index, finished_at=time.monotonic())

    def _answer(self, route: str | None, request: RecordedRequest, body: Any) -> None:
        if route is None:
            message = f"FakeOpenAI does not serve {self.command} {self.path}."
            self._send_error(Reply(status=404, error_message=message, error_code="unknown_url"))
            return
        if not isinstance(body, dict):
            message = "We could not parse the JSON body of your request."
            self._send_error(Reply(status=400, error_message=message))
            return
        try:
            reply = self.fake._take_reply(request)
        except Exception as error:  # a Reply.when or default_reply of the test is broken
            logger.exception("FakeOpenAI: choosing the reply failed")
            message = f"FakeOpenAI could not choose a reply: {error!r}"
            self._send_error(Reply(status=500, error_message=message, error_code="fake_error"))
            return
        if reply is None:
            message = (
                "FakeOpenAI has no reply for this request: queue one with fake.queue(Reply(...)) "
                "or set fake.default_reply."
            )
            self._send_error(Reply(status=400, error_message=message, error_code="no_reply"))
            return
        self.fake._update(self.index, reply=reply)
        if reply.hang:
            self._hold()
        elif reply.is_error:
            self._send_error(reply)
        else:
            builder: ResponseBuilder | ChatCompletionBuilder = (
                ResponseBuilder(request, reply)
                if route == "responses"
                else ChatCompletionBuilder(request, reply)
            )
            if request.stream:
                self._stream(builder.frames(), reply)
            else:
                self._whole(builder.final(), reply)

    def _answer_endpoint(self, endpoint: Endpoint, request: RecordedRequest) -> None:
        try:
            answer: JsonAnswer | Reply = endpoint.answer(request)
        except Exception as error:  # a bug of the endpoint, or a Reply.when of the test
            logger.exception("FakeOpenAI: answering %s %s failed", request.method, request.path)
            message = f"FakeOpenAI could not answer: {error!r}"
            self._send_error(Reply(status=500, error_message=message, error_code="fake_error"))
            return
        if isinstance(answer, JsonAnswer):
            self._send_json(answer.status, answer.payload, answer.headers)
            return
        self.fake._update(self.index, reply=answer)
        if answer.hang:
            self._hold()
        else:
            self._send_error(answer)

    def _send_error(self, reply: Reply) -> None:
        self._send_json(reply.status, error_body(reply), error_headers(reply))

    def _whole(self, payload: dict[str, Any], reply: Reply) -> None:
        self._pause(reply.first_token_delay)
        if reply.drop_after is not None:
            self.abort(self.connection)
        elif reply.stall_after is not None:
            self._hold()
        else:
            self._send_json(200, payload, reply.headers)

    def _send_json(self, status: int, payload: Any, headers: Mapping[str, str]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self._end_headers(headers)
        self.fake._update(self.index, status=status)
        self.wfile.write(data)
        self.fake._update(self.index, completed=True)

    def _stream(self, frames: Sequence[Frame], reply: Reply) -> None:
        self._check_client()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self._end_headers(reply.headers)
        self.fake._update(self.index, status=200)
        deltas = 0
        for frame in frames:
            if frame.is_delta or frame.is_final:
                # Past the limit, or at the end with fewer deltas than the limit.
                if reply.drop_after is not None and (frame.is_final or deltas >= reply.drop_after):
                    self.abort(self.connection)
                    return
                if reply.stall_after is not None and (
                    frame.is_final or deltas >= reply.stall_after
                ):
                    self._hold()
                    return
                if deltas == 0:
                    self._pause(reply.first_token_delay)
                elif frame.is_delta:
                    self._pause(reply.token_delay)
                deltas += frame.is_delta
            self._check_client()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(frame.data), frame.data))
            if frame.is_delta and deltas == 1:
                self.fake._update(self.index, first_delta_at=time.monotonic())
        self.wfile.write(b"0\r\n\r\n")
        self.fake._update(self.index, completed=True)

    def _end_headers(self, extra: Mapping[str, str]) -> None:
        self.send_header("x-request-id", "req_" + secrets.token_hex(16))
        self.send_header("openai-version", "2020-10-01")
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()

    # -- waiting -----------------------------------------------------------------------------

    def _hold(self) -> None:
        """Keep the connection open, sending nothing, until the client gives up, stop() is
        called, or ``max_hang`` passes; then close it."""
        self._pause(self.fake.max_hang)
        logger.warning("FakeOpenAI: closing a connection held for max_hang=%ss", self.fake.max_hang)
        self.abort(self.connection)

    def _pause(self, seconds: float) -> None:
        """Sleep, but wake up at once when the client goes away or the fake stops."""
        deadline = time.monotonic() + seconds
        while True:
            if self.fake._stopping.is_set():
                raise _Stopping
            remaining = deadline - time.monotonic()
            if self._client_closed(min(max(remaining, 0.0), _POLL)):
                raise _ClientGone
            if remaining <= 0:
                return

    def _check_client(self) -> None:
        if self.fake._stopping.is_set():
            raise _Stopping
        if self._client_closed(0.0):
            raise _ClientGone

    def _client_closed(self, timeout: float) -> bool:
        """Whether the client closed its end, waiting up to ``timeout`` to find out.

        The request is fully read and the connection is not reused, so the only thing that can
        make the socket readable is the client's FIN (or RST).
        """
        try:
            if not self._selector.select(timeout):
                return False
            if self.connection.recv(1, socket.MSG_PEEK) == b"":
                return True
        except (BlockingIOError, InterruptedError):
            return False
        except (OSError, ValueError):
            return True
        time.sleep(timeout)  # unexpected bytes: don't spin on them
        return False
