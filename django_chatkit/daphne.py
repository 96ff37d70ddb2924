"""Daphne, refusing oversized bodies to ChatKit's views while they arrive.

    python -m django_chatkit.daphne -b 0.0.0.0 -p 8000 mysite.asgi:application

Daphne's own command line, options and all, with one difference in how it receives requests.
Plain daphne (through Twisted) reads a request's whole body, into a temporary file, before it
starts the ASGI application, then queues all of it for the application at once (in memory);
Twisted also parses every ``multipart/form-data`` POST with the ``email`` package to fill
``request.args``, which daphne never reads: about eleven times the body in memory. No ASGI
middleware can help, since none runs before the body is in. Here, for a request to the protocol
endpoint or an upload URL (:func:`django_chatkit.body_limits.body_limit`):

- a declared ``Content-Length`` over the limit is answered 413 as soon as the headers are in,
  and the connection closed, without reading the body;
- a chunked body is counted as it arrives and refused (413, connection closed, what was stored
  dropped) at the first chunk past the limit;

and no request's form body is parsed by Twisted. Every other request is received as daphne
receives it. :class:`Server` is daphne's ``Server`` with these requests, for code that starts
daphne itself.
"""

from __future__ import annotations

import inspect
import logging
from http import HTTPStatus
from io import BytesIO
from typing import IO, Any
from urllib.parse import unquote

from daphne.cli import CommandLineInterface as DaphneCommandLineInterface  # type: ignore[import-untyped]
from daphne.http_protocol import HTTPFactory as DaphneHTTPFactory  # type: ignore[import-untyped]
from daphne.http_protocol import WebRequest
from daphne.server import Server as DaphneServer  # type: ignore[import-untyped]
from django.core.handlers.asgi import get_script_prefix
from twisted.web import http

from django_chatkit.body_limits import BodyLimit, body_limit, media_type

logger = logging.getLogger("django_chatkit")

# Recent Twisted can leave form bodies unparsed; older versions always parse them.
_CAN_SKIP_FORM_PARSING = "parsePOSTFormSubmission" in inspect.signature(http.Request).parameters


# daphne has no type hints: its classes are Any to mypy, and subclassing Any is an error
# (disallow_subclassing_any) silenced class by class.
class BodyLimitedRequest(WebRequest):  # type: ignore[misc]
    """daphne's request, refusing a body over its view's limit before it is stored."""

    content: IO[bytes]  # Twisted's buffer of the body (a temporary file past 100 kB)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if _CAN_SKIP_FORM_PARSING:
            kwargs.setdefault("parsePOSTFormSubmission", False)
        self.body_limit: BodyLimit | None = None
        self.body_received = 0
        self.refused = False
        super().__init__(*args, **kwargs)

    # Twisted's method names.
    def gotLength(self, length: int | None) -> None:
        """The headers are in: find the limit, refuse a declared length over it."""
        if length == 0:  # no body (Twisted's length is None for a chunked one)
            super().gotLength(length)
            return
        self.body_limit = self._find_limit()
        if (
            self.body_limit is not None
            and length is not None
            and length > self.body_limit.max_bytes
        ):
            super().gotLength(0)  # an empty buffer in place of a temporary file
            self._refuse()
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self.refused:
            return
        if self.body_limit is not None:
            self.body_received += len(data)
            if self.body_received > self.body_limit.max_bytes:
                self.content.close()  # the temporary file, with what came so far
                self.content = BytesIO()
                self._refuse()
                return
        super().handleContentChunk(data)

    def process(self) -> Any:
        # The whole body may have come in with the data that crossed the limit.
        if self.refused:
            return None
        return super().process()

    def _find_limit(self) -> BodyLimit | None:
        # The request line is parsed, but Twisted hands it to the request only once the body is
        # in (requestReceived): until then it is on the channel.
        target = getattr(self.channel, "_path", b"")
        try:
            path = unquote(target.split(b"?", 1)[0].decode("ascii"))
        except UnicodeDecodeError:
            return None  # daphne answers 400
        root_path = self.server.root_path
        header_root = self.requestHeaders.getRawHeaders(b"daphne-root-path")
        if header_root:
            root_path = unquote(header_root[0].decode("ascii", "replace"))
        path_info = path.removeprefix(get_script_prefix({"root_path": root_path}))
        try:
            return body_limit(
                path_info, media_type(self._header(b"content-type")), self._header(b"origin")
            )
        except Exception:
            # An URLconf that fails to load fails the same way in Django, which reports it.
            logger.debug("No body limit for %s: resolving the path failed", path, exc_info=True)
            return None

    def _header(self, name: bytes) -> str:
        values = self.requestHeaders.getRawHeaders(name)
        return values[0].decode("latin-1") if values else ""

    def _refuse(self) -> None:
        assert self.body_limit is not None
        self.refused = True
        logger.warning(
            "Refused a request body over %d bytes: %s",
            self.body_limit.max_bytes,
            getattr(self.channel, "_path", b"").decode("ascii", "replace"),
        )
        response = self.body_limit.refusal()
        lines = [f"HTTP/1.1 {response.status_code} {HTTPStatus(response.status_code).phrase}"]
        lines += [f"{name}: {value}" for name, value in response.items()]
        lines.append(f"Content-Length: {len(response.content)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        # Twisted would answer "100 Continue" once this returns: the answer is already given.
        self.requestHeaders.removeHeader(b"expect")
        self.channel.transport.write(head + response.content)
        self.loseConnection()


class HTTPFactory(DaphneHTTPFactory):  # type: ignore[misc]
    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = BodyLimitedRequest
        return protocol


class Server(DaphneServer):  # type: ignore[misc]
    """daphne's ``Server``, receiving HTTP requests as :class:`BodyLimitedRequest`."""

    @property
    def http_factory(self) -> Any:
        return self._http_factory

    @http_factory.setter
    def http_factory(self, factory: Any) -> None:
        # Server.run() makes daphne's factory and listens with it right away, with no option
        # to choose another: ours takes its place as it is assigned.
        if type(factory) is DaphneHTTPFactory:
            factory = HTTPFactory(self)
        self._http_factory = factory


class CommandLineInterface(DaphneCommandLineInterface):  # type: ignore[misc]
    """daphne's command line, serving with :class:`Server`."""

    server_class = Server


def main() -> None:
    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
