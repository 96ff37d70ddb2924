"""The fake OpenAI server in a process of its own, driven by JSON lines on stdin.

    python -m benchmarks.fake_process        # prints {"base_url": ...}, then answers commands

The load client, the fake and the ASGI server under test each get their own process (and GIL),
so a busy fake does not slow the client's clock reads and the other way round. Times in the
records are ``time.monotonic()``, which is the same clock in every process of the machine.

Commands (one JSON object per line; each gets one JSON line back):

- ``{"cmd": "reply", "tokens": 200, "token_delay": 0.02, "first_token_delay": 0.2}``: how every
  following request is answered (``tokens`` deltas ``"w<i> "``).
- ``{"cmd": "records", "since": 0}``: the requests received (index >= ``since``), each with the
  text of its last user message (the client's marker), its start, first delta and finish times.
- ``{"cmd": "quit"}``.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from django_chatkit.testing import FakeOpenAI, Reply


def reply_factory(tokens: int, token_delay: float, first_token_delay: float) -> Reply:
    return Reply(
        tokens=[f"w{i} " for i in range(tokens)],
        token_delay=token_delay,
        first_token_delay=first_token_delay,
    )


def record_row(record: Any) -> dict[str, Any]:
    return {
        "index": record.index,
        "marker": record.last_user_text,
        "started_at": record.started_at,
        "first_delta_at": record.first_delta_at,
        "finished_at": record.finished_at,
        "status": record.status,
        "completed": record.completed,
        "disconnected": record.disconnected,
    }


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    current = {"reply": reply_factory(200, 0.0, 0.0)}
    # The Server keeps a short listen backlog by default; hundreds of streams connect at once.
    from django_chatkit.testing.fake_openai import _http

    _http.Server.request_queue_size = 1024
    with FakeOpenAI(default_reply=lambda request: current["reply"], max_hang=5.0) as fake:
        print(json.dumps({"base_url": fake.base_url}), flush=True)
        for line in sys.stdin:
            command = json.loads(line)
            name = command.get("cmd")
            if name == "reply":
                current["reply"] = reply_factory(
                    int(command.get("tokens", 200)),
                    float(command.get("token_delay", 0.0)),
                    float(command.get("first_token_delay", 0.0)),
                )
                answer: dict[str, Any] = {"ok": True}
            elif name == "records":
                since = int(command.get("since", 0))
                rows = [record_row(r) for r in fake.requests if r.index >= since]
                answer = {"ok": True, "records": rows}
            elif name == "quit":
                print(json.dumps({"ok": True}), flush=True)
                break
            else:
                answer = {"ok": False, "error": f"unknown command {name!r}"}
            print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
