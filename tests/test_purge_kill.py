"""chatkit_purge killed (SIGKILL) mid-run, as a real process, then run again: no orphaned rows,
no file without its row, no row without its file, held and recent threads intact.

The command runs as ``python -m django chatkit_purge`` on the test's database (committed rows:
``transaction=True``; SQLite's test database is a file). Where it is killed is chosen with the
command's test hook (``CHATKIT_PURGE_TEST_STOP``, django_chatkit/purge.py): at the Nth arrival
at a point it says so on stderr and waits on its stdin, and the test kills it there.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from io import StringIO
from pathlib import Path
from typing import IO

import pytest
from django.core.management import call_command

from django_chatkit import models
from django_chatkit.purge import STOP_ENV, STOP_LINE
from tests.attachment_flow import local_media
from tests.lifecycle_data import NOTHING_LEFT, gone, intact, leftovers, make_thread
from tests.live_server import REPO_ROOT, database_url

pytestmark = pytest.mark.django_db(transaction=True)

CHATKIT = {
    "SERVER": "tests.servers.ScriptedServer",
    "DOMAIN_KEY": "domain_pk_tests",
    "RETENTION": 30,
}
BATCH = 2
TIMEOUT = 60.0


def _lines(stream: IO[str], into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line.rstrip("\n"))
    into.put("")  # end of output


def run_until_killed(root: Path, stop: str) -> str:
    """Start the purge in a child process, kill it at ``stop``; what it printed."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(),
        "CHATKIT_TEST_MEDIA_ROOT": str(root),
        "CHATKIT_TEST_SETTINGS": json.dumps(CHATKIT),
        STOP_ENV: stop,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "django", "chatkit_purge", "--batch-size", str(BATCH)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )
    assert process.stdout is not None and process.stderr is not None
    errors: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(process.stderr, errors), daemon=True).start()
    seen = []
    try:
        while True:
            line = errors.get(timeout=TIMEOUT)
            seen.append(line)
            if line.startswith(STOP_LINE) or line == "":
                break
        assert seen[-1] == f"{STOP_LINE} {stop.split(':')[0]}", "\n".join(seen)
        process.send_signal(signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(TIMEOUT)
    output = process.stdout.read()
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            stream.close()
    assert process.returncode == -signal.SIGKILL
    return output


@pytest.mark.parametrize(
    "stop",
    [
        "before-commit:1",  # the first batch's rows deleted and journalled, not committed
        "before-commit:2",
        "after-commit:1",  # committed: files without rows, listed in the journal
        "after-commit:3",
        "after-batch:2",  # between two batches
    ],
)
def test_killed_mid_run_then_run_again_leaves_nothing_behind(tmp_path, alice, bob, stop):
    root = tmp_path / "media"
    with local_media(root, CHATKIT):
        due = [make_thread(alice, idle_days=40 + n, attachments=1 + n % 2) for n in range(4)]
        due += [make_thread(bob, idle_days=50 + n) for n in range(3)]
        held = [
            make_thread(alice, idle_days=45, held=True),
            make_thread(bob, idle_days=300, held=True),
        ]
        recent = make_thread(alice, idle_days=3)

        output = run_until_killed(root, stop)

        point, _, nth = stop.partition(":")
        committed = int(nth) - (1 if point == "before-commit" else 0)
        # Whole batches only: the killed one is all there (before its commit) or all gone.
        assert models.Thread.objects.count() == len(due) + 3 - committed * BATCH
        # A batch is reported once it is done: the one killed is not.
        assert output.count("Batch ") == int(nth) - 1, output
        left = leftovers(root)
        if point == "after-commit":
            # What the journal is for: the batch's rows are gone, its files are not, and only
            # the journal still names them.
            assert left["files without row"], left
            assert len(left["journal entries"]) == 1
        else:
            assert left["files without row"] == left["rows without file"] == [], left
            # Killed before its commit, the batch's entry names files whose rows still exist.
            assert len(left["journal entries"]) == (point == "before-commit")

        call_command("chatkit_purge", "--batch-size", str(BATCH), stdout=StringIO())

        for made in due:
            gone(made, root)
        for made in [*held, recent]:
            intact(made, root)
        assert leftovers(root) == NOTHING_LEFT
