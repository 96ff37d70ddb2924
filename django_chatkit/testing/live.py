"""httpx clients for a live server (uvicorn or daphne on the test database; pytest-django's
``live_server``, which is WSGI, buffers streams), signed in as a browser is: a session cookie,
and the CSRF cookie and header.

Django's test client never leaves the process, so it cannot show what an ASGI server and the
network do to a stream: buffering, a client that hangs up halfway. These can::

    with live_client(server_url, user) as http:
        with http.stream("POST", "/chatkit/", content=request_body("threads.list")) as r:
            for event in iter_sse(r.iter_raw()):
                break  # leaving the block closes the connection: a disconnect mid-stream

The session is written to the database the test uses, so the server must share it, and the
test must commit (pytest-django: ``transaction=True``).
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from django.test import Client

from .client import CSRF_TOKEN

if TYPE_CHECKING:
    import httpx

__all__ = ["async_live_client", "live_client"]

# Seconds a request to a live server may take: more than httpx's 5, since a cold server
# imports the URLconf, the SDK and the agent on its first request. ``timeout=`` overrides it.
DEFAULT_TIMEOUT = 30.0


def live_client(base_url: str, user: Any = None, **httpx_options: Any) -> httpx.Client:
    """An ``httpx.Client`` for ``base_url``, signed in as ``user`` (anonymous when ``None``)."""
    _require_httpx()
    import httpx

    return httpx.Client(**_options(base_url, user, httpx_options))


def async_live_client(base_url: str, user: Any = None, **httpx_options: Any) -> httpx.AsyncClient:
    """:func:`live_client` as an ``httpx.AsyncClient``: read streams with :func:`aiter_sse`."""
    _require_httpx()
    import httpx

    return httpx.AsyncClient(**_options(base_url, user, httpx_options))


def _require_httpx() -> None:
    # httpx is imported in the functions, not at the top: it is no dependency of the package (the
    # testing extra installs it), and the rest of django_chatkit.testing, its pytest fixtures
    # included, must import without it.
    if importlib.util.find_spec("httpx") is None:
        raise ModuleNotFoundError(
            'live_client needs httpx: pip install "django-openai-chatkit[testing]"', name="httpx"
        )


def _options(base_url: str, user: Any, options: dict[str, Any]) -> dict[str, Any]:
    cookies = {"csrftoken": CSRF_TOKEN}
    if user is not None:
        cookies["sessionid"] = _session_cookie(user)
    return {
        "base_url": base_url,
        "timeout": DEFAULT_TIMEOUT,
        "cookies": cookies,
        "headers": {"X-CSRFToken": CSRF_TOKEN, "Content-Type": "application/json"},
        **options,
    }


def _session_cookie(user: Any) -> str:
    """The ``sessionid`` of a new session in which ``user`` is signed in (saved to the DB)."""
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value
