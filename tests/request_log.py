"""A line in a live server's output for every request Django has finished handling.

``request_finished`` fires once the response has ended: for a streamed answer whose client went
away, once Django has cancelled the stream and the SDK has stored what it keeps. Tests count
these lines (``LiveServer.wait_for_finished_requests``) to know the server is done with a
request instead of sleeping and hoping it is.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.signals import request_finished

REQUEST_FINISHED_LINE = "tests.request_log: request finished"


def _report(**kwargs: Any) -> None:
    print(REQUEST_FINISHED_LINE, file=sys.stderr, flush=True)


def install() -> None:
    """Report finished requests on stderr (the server process's log) from now on."""
    request_finished.connect(_report, dispatch_uid="tests.request_log")
