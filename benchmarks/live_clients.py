"""The clients of ``benchmarks.live_scale``, all on one asyncio loop: thread websockets that time
each notice as it arrives, and turns posted to a server's ChatKit endpoint, their stream read
with each ``thread.item.done`` event timed.

A websocket connects as a browser does: the session cookie, an ``Origin`` the server allows, and
``permessage-deflate`` offered (what the server accepts is recorded). It sends no pings of its
own (a browser does not); it answers the server's.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx
from websockets.asyncio.client import ClientConnection, connect

from django_chatkit.testing import aiter_sse, request_body, user_input

ENDPOINT = "/chatkit/"
# Answered by the servers' app (benchmarks/live_asgi.py): when each item's write committed there.
COMMITS_PATH = "/__bench__/commits"
ITEM_ADDED = "item.added"
FEEDBACK = "item.feedback"
SUBSCRIBED = "subscribed"
# Seconds a socket may take to open and say it is subscribed (a busy machine, hundreds at once).
OPEN_TIMEOUT = 60.0


class SocketRefused(RuntimeError):
    """The server closed a thread's socket instead of subscribing it."""


def notice_key(event: str, item_id: str) -> str:
    """How notices are keyed here and in the servers' commit times (benchmarks/live_asgi.py)."""
    return f"{event}:{item_id}"


@dataclass
class Subscriber:
    """One open thread websocket; a task reads it and times each notice naming an item (the
    first of each event and item), and counts every notice by event."""

    connection: ClientConnection
    thread_id: str
    arrivals: dict[str, float] = field(default_factory=dict)  # notice_key -> when read
    counts: Counter[str] = field(default_factory=Counter)
    reader: asyncio.Task[None] | None = None
    closing: bool = False
    lost: str | None = None  # why the socket ended before the harness closed it (close code)

    @property
    def extensions(self) -> str:
        response = self.connection.response
        return response.headers.get("Sec-WebSocket-Extensions", "") if response else ""

    def start(self) -> None:
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            async for message in self.connection:
                now = time.monotonic()
                event = json.loads(message)
                self.counts[str(event.get("event"))] += 1
                if "item_id" in event:
                    self.arrivals.setdefault(notice_key(event["event"], event["item_id"]), now)
        finally:
            if not self.closing:
                # The server (or the network) ended it: a socket that hears nothing more.
                self.lost = f"{self.connection.close_code} {self.connection.close_reason}"

    def arrived(self, event: str, item_id: str) -> float | None:
        return self.arrivals.get(notice_key(event, item_id))

    async def close(self) -> None:
        self.closing = True
        await self.connection.close()
        if self.reader is not None:
            await asyncio.gather(self.reader, return_exceptions=True)


def socket_url(server_url: str, thread_id: str) -> str:
    return server_url.replace("http://", "ws://", 1) + f"/ws/chatkit/threads/{thread_id}/"


async def subscribe(
    server_url: str, session: str, thread_id: str, *, deflate: bool = True
) -> Subscriber:
    """Open the thread's socket and return once the server says it is subscribed.

    ``deflate`` False: permessage-deflate not offered (a client that does not compress)."""
    connection = await connect(
        socket_url(server_url, thread_id),
        additional_headers={"Cookie": f"sessionid={session}", "Origin": server_url},
        open_timeout=OPEN_TIMEOUT,
        ping_interval=None,
        max_queue=None,
        compression="deflate" if deflate else None,
    )
    try:
        first = json.loads(await asyncio.wait_for(connection.recv(), OPEN_TIMEOUT))
    except Exception as exc:
        await connection.close()
        raise SocketRefused(f"{thread_id}: {exc!r} (close code {connection.close_code})") from exc
    if first != {"event": SUBSCRIBED, "thread_id": thread_id}:
        await connection.close()
        raise SocketRefused(f"{thread_id}: first message {first}")
    subscriber = Subscriber(connection, thread_id)
    subscriber.start()
    return subscriber


async def subscribe_many(
    server_url: str,
    session: str,
    thread_id: str,
    count: int,
    concurrency: int,
    *,
    deflate: bool = True,
) -> list[Subscriber]:
    """``count`` sockets on one thread, at most ``concurrency`` opening at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one() -> Subscriber:
        async with gate:
            return await subscribe(server_url, session, thread_id, deflate=deflate)

    opened = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    subscribers = [s for s in opened if isinstance(s, Subscriber)]
    failures = [s for s in opened if not isinstance(s, Subscriber)]
    if failures:
        await close_all(subscribers)
        raise SocketRefused(f"{len(failures)} of {count} sockets failed, the first: {failures[0]}")
    return subscribers


async def close_all(subscribers: Iterable[Subscriber]) -> None:
    await asyncio.gather(*(s.close() for s in subscribers), return_exceptions=True)


def http_client(server_url: str, session: str) -> httpx.AsyncClient:
    """A client signed in with ``session``, with the CSRF cookie and header the view expects."""
    from django_chatkit.testing import CSRF_TOKEN

    return httpx.AsyncClient(
        base_url=server_url,
        timeout=60.0,
        cookies={"csrftoken": CSRF_TOKEN, "sessionid": session},
        headers={"X-CSRFToken": CSRF_TOKEN, "Content-Type": "application/json"},
    )


@dataclass
class Turn:
    """One turn's stream as the client read it."""

    thread_id: str
    sent_at: float
    # (item type, item id, when the client read its thread.item.done event)
    done: list[tuple[str, str, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def item(self, item_type: str) -> tuple[str, float] | None:
        """(id, done event time) of the turn's first item of ``item_type``."""
        for kind, item_id, at in self.done:
            if kind == item_type:
                return item_id, at
        return None


async def post_turn(http: httpx.AsyncClient, thread_id: str | None, text: str) -> Turn:
    """A user message (a new thread when ``thread_id`` is None) and its streamed answer."""
    if thread_id is None:
        body = request_body("threads.create", input=user_input(text))
    else:
        body = request_body("threads.add_user_message", thread_id=thread_id, input=user_input(text))
    turn = Turn(thread_id or "", time.monotonic())
    async with http.stream("POST", ENDPOINT, content=body) as response:
        if response.status_code != 200:
            turn.errors.append(f"HTTP {response.status_code}: {(await response.aread())[:300]!r}")
            return turn
        async for event in aiter_sse(response.aiter_raw()):
            now = time.monotonic()
            if event["type"] == "thread.created":
                turn.thread_id = str(event["thread"]["id"])
            elif event["type"] == "thread.item.done":
                turn.done.append((str(event["item"]["type"]), str(event["item"]["id"]), now))
            elif event["type"] == "error":
                turn.errors.append(str(event.get("message")))
    return turn


async def vote(http: httpx.AsyncClient, thread_id: str, item_id: str) -> None:
    """A thumbs-up on an item: one ``item.feedback`` notice."""
    body = request_body("items.feedback", thread_id=thread_id, item_ids=[item_id], kind="positive")
    response = await http.post(ENDPOINT, content=body)
    response.raise_for_status()


async def commit_times(http: httpx.AsyncClient) -> dict[str, float]:
    """When writes committed in the server ``http`` talks to, by notice_key (live_asgi)."""
    response = await http.get(COMMITS_PATH)
    response.raise_for_status()
    return {str(key): float(value) for key, value in response.json()["commits"].items()}
