"""The newcomer test: README.md's Quickstart, verbatim, on a brand-new site.

What a new user does, done by a script so that the README cannot drift from what works:

1. build this checkout's wheel and make a new virtualenv (no repository on its path);
2. apply the Quickstart's snippets, read from README.md itself: each fenced block preceded by a
   ``<!-- newcomer: ... -->`` marker is run (``shell``), written to a file of the new project
   (``write PATH``), appended to one (``append PATH``), or used to serve the site (``serve``);
   the package name in ``pip install`` is replaced by the wheel's path, and nothing else is
   changed except what a script cannot do at a terminal (``createsuperuser`` gets ``--noinput``
   and its answers from the environment; each server gets a free port);
3. ``manage.py check --fail-level WARNING``, timed;
4. serve the site with each ``serve`` command (``runserver``, uvicorn, daphne) and, in headless
   Chromium, follow the page's "Sign in" link, sign in through the login form, see the widget's
   bootstrap module load (200) and start the widget (a stand-in ``<openai-chatkit>`` answers for
   OpenAI's CDN script, which cannot load here), and chat once through the endpoint, against
   the fake OpenAI server of ``django_chatkit.testing`` (``OPENAI_BASE_URL``).

It prints the time from ``pip install`` to the first streamed answer. Any step that fails stops
the run with the README line it came from and the server's output.

Run: ``python -m tests.newcomer`` (``make newcomer``), from the repository, with the test extra
installed (Playwright, for the browser) and Debian's Chromium. ``--readme`` takes another copy of
the README (to see the test fail on a broken snippet), ``--python`` the interpreter of the new
site.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django_chatkit.conf import DEFAULTS
from django_chatkit.testing import FakeOpenAI, Reply, is_title_request, user_input
from tests.processes import HOST, free_port, wait_until_listening

REPO = Path(__file__).resolve().parent.parent
DISTRIBUTION = "django-openai-chatkit"
PROJECT = "myproject"  # the name the Quickstart gives to `django-admin startproject`
USERNAME, PASSWORD = "newcomer", "a-long-newcomer-password"
CDN_URL = DEFAULTS["CDN_URL"]  # what the tag renders when the settings do not change it
STAND_IN = REPO / "tests" / "templates" / "chatkit_tests" / "stand_in.js"
CHROMIUM = os.environ.get("CHATKIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
# Generous: a cold server on a busy 2-core machine imports Django, both SDKs and the agent.
START_TIMEOUT = 90.0
PAGE_TIMEOUT_MS = 60_000

MARKER = re.compile(r"^<!-- newcomer: (?P<kind>shell|serve|write|append)(?: (?P<path>\S+))? -->$")
FENCE = re.compile(r"^```(?P<language>\w*)$")


class NewcomerFailure(Exception):
    """A step of the Quickstart did not work; the message says which and why."""


@dataclass(frozen=True)
class Snippet:
    kind: str  # shell, serve, write or append
    path: str | None  # for write / append: relative to the project directory
    text: str
    line: int  # of the code block in the README, for messages

    def where(self) -> str:
        target = f" {self.path}" if self.path else ""
        return f"README line {self.line} ({self.kind}{target})"


def extract_snippets(readme: str) -> list[Snippet]:
    """The marked code blocks of ``readme``, in order; a marker without a block is an error."""
    lines = readme.splitlines()
    snippets = []
    for index, line in enumerate(lines):
        marker = MARKER.match(line.strip())
        if not marker:
            continue
        if index + 1 >= len(lines) or not FENCE.match(lines[index + 1].strip()):
            raise NewcomerFailure(f"README line {index + 1}: a newcomer marker not followed by ```")
        body = []
        for end in range(index + 2, len(lines)):
            if lines[end].strip() == "```":
                break
            body.append(lines[end])
        else:
            raise NewcomerFailure(f"README line {index + 2}: a code block that never ends")
        kind, path = marker["kind"], marker["path"]
        if (kind in ("write", "append")) != (path is not None):
            raise NewcomerFailure(f"README line {index + 1}: {kind!r} takes a path iff it writes")
        snippets.append(Snippet(kind, path, "\n".join(body) + "\n", index + 2))
    kinds = {snippet.kind for snippet in snippets}
    if not {"shell", "serve"} <= kinds:
        raise NewcomerFailure("README.md: the Quickstart has no marked shell or serve block")
    return snippets


def shell_commands(snippet: Snippet) -> list[str]:
    """The commands of a shell block, without comments and blank lines."""
    commands = []
    for line in snippet.text.splitlines():
        command = line.split(" #", 1)[0].strip()
        if command and not command.startswith("#"):
            commands.append(command)
    return commands


def adapt_command(command: str, wheel: Path) -> str:
    """What a script must change in a command a person types: which package file to install,
    and answers to prompts."""
    if command.startswith("pip install") and DISTRIBUTION in command:
        # The README installs from the package index; this checkout's wheel stands in for it.
        return re.sub(rf"{DISTRIBUTION}(\[[^\]\"']*\])?", rf"{wheel}\1", command)
    if "manage.py createsuperuser" in command:
        return command + " --noinput"  # answers from DJANGO_SUPERUSER_* (see site_environment)
    return command


class Site:
    """The new project in a new virtualenv, and what the run measured."""

    def __init__(self, workdir: Path, python: str, wheel: Path, fake: FakeOpenAI) -> None:
        self.workdir = workdir
        self.venv = workdir / "venv"
        self.project = workdir / PROJECT
        self.wheel = wheel
        self.fake = fake
        self.log_dir = workdir / "logs"
        self.log_dir.mkdir()
        created = subprocess.run(
            [python, "-m", "venv", str(self.venv)], capture_output=True, text=True
        )
        if created.returncode != 0:
            raise NewcomerFailure(f"`{python} -m venv` failed: {created.stderr or created.stdout}")
        self.run(["python", "-m", "pip", "install", "--quiet", "--upgrade", "pip"], self.workdir)

    def environment(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            # Nothing of the repository's own environment leaks into the new site.
            if key not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV")
            and not key.startswith(("CHATKIT_", "DATABASE_", "REDIS_"))
        }
        env.update(self.fake.env)  # the OPENAI_API_KEY the Quickstart asks for, and the fake
        env.update(
            VIRTUAL_ENV=str(self.venv),
            PATH=f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            DJANGO_SUPERUSER_USERNAME=USERNAME,
            DJANGO_SUPERUSER_PASSWORD=PASSWORD,
            DJANGO_SUPERUSER_EMAIL=f"{USERNAME}@example.com",
            PYTHONUNBUFFERED="1",
        )
        return env

    def cwd(self) -> Path:
        """Where a person types the next command: in the project once it exists."""
        return self.project if (self.project / "manage.py").exists() else self.workdir

    def run(self, command: list[str] | str, cwd: Path, where: str = "") -> str:
        shell = isinstance(command, str)
        result = subprocess.run(
            command,
            cwd=cwd,
            env=self.environment(),
            shell=shell,
            executable="/bin/bash" if shell else None,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise NewcomerFailure(
                f"{where or 'setup'}: `{command}` exited with {result.returncode}\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )
        return result.stdout

    def apply(self, snippet: Snippet) -> None:
        print(f"-- {snippet.where()}", flush=True)
        if snippet.kind == "shell":
            for command in shell_commands(snippet):
                adapted = adapt_command(command, self.wheel)
                print(f"   $ {adapted}", flush=True)
                self.run(adapted, self.cwd(), snippet.where())
            return
        assert snippet.path is not None
        target = self.project / snippet.path
        if not (self.project / "manage.py").exists():
            raise NewcomerFailure(f"{snippet.where()}: no project yet (startproject not run)")
        if snippet.kind == "append":
            if not target.exists():
                raise NewcomerFailure(f"{snippet.where()}: {target} does not exist to append to")
            with target.open("a") as file:
                file.write("\n" + snippet.text)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(snippet.text)

    def serve_command(self, command: str, port: int) -> list[str]:
        """A serve command of the README, on ``port``."""
        argv = shlex.split(command)
        if argv[:3] == ["python", "manage.py", "runserver"]:
            return [*argv, f"{HOST}:{port}"]
        if argv[0] == "uvicorn":
            return [*argv, "--host", HOST, "--port", str(port)]
        if argv[:3] == ["python", "-m", "django_chatkit.daphne"]:
            return [*argv, "-b", HOST, "-p", str(port)]
        raise NewcomerFailure(f"don't know how to give a port to `{command}`")

    @contextmanager
    def server(self, command: str, where: str) -> Iterator[str]:
        """The site served by ``command``; yields its URL."""
        if command.startswith("uvicorn") and not (self.venv / "bin" / "uvicorn").exists():
            # The README says so in the command's comment: "after pip install uvicorn".
            self.run(["python", "-m", "pip", "install", "--quiet", "uvicorn"], self.workdir)
        port = free_port()
        argv = self.serve_command(command, port)
        name = argv[0] if argv[0] != "python" else " ".join(argv[1:3])
        log_path = self.log_dir / f"{port}.log"
        with log_path.open("w") as log:
            # Its own process group: runserver's autoreloader runs the server in a child.
            process = subprocess.Popen(
                argv,
                cwd=self.project,
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def output() -> str:
            return f"{where}: `{' '.join(argv)}` said:\n{log_path.read_text()[-6000:]}"

        try:
            wait_until_listening(process, (HOST, port), START_TIMEOUT, name=name, describe=output)
            yield f"http://{HOST}:{port}"
        except Exception as error:
            raise NewcomerFailure(f"{error}\n{output()}") from error
        finally:
            stop_group(process)


def stop_group(process: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout)


def chat_in_browser(browser: Any, url: str, answer: str) -> dict[str, Any]:
    """Sign in through the site's pages and chat once through the widget; what was seen."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    bootstrap_statuses: list[tuple[str, int]] = []
    stand_in = STAND_IN.read_text()

    def route(route: Any) -> None:
        request_url = route.request.url
        if request_url.startswith(url + "/"):
            route.continue_()
        elif request_url == CDN_URL:  # OpenAI's script: the stand-in widget answers for it
            route.fulfill(status=200, content_type="text/javascript", body=stand_in)
        else:
            route.abort()

    failed_pages: list[str] = []

    def response(response: Any) -> None:
        if "bootstrap" in response.url and response.url.endswith(".js"):
            bootstrap_statuses.append((response.url, response.status))
        if response.request.resource_type == "document" and response.status >= 400:
            failed_pages.append(f"{response.status} for {response.request.method} {response.url}")

    def pages_ok(step: str) -> None:
        if failed_pages:
            raise NewcomerFailure(f"{step}: the site answered {'; '.join(failed_pages)}")

    page.route("**/*", route)
    page.on("response", response)
    try:
        page.goto(url + "/")
        pages_ok("the chat page, signed out")
        page.click("a:has-text('Sign in')")
        page.wait_for_load_state("load")
        pages_ok("the sign-in link")
        page.fill("input[name=username]", USERNAME)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state("load")
        pages_ok("signing in")
        page.wait_for_url(url + "/")
        page.wait_for_load_state("load")  # after every script of the page, modules included
        pages_ok("the chat page, signed in")
        if not any(status == 200 for _, status in bootstrap_statuses):
            raise NewcomerFailure(
                f"the widget's bootstrap module did not load: {bootstrap_statuses}"
            )
        page.wait_for_function(
            "() => document.querySelector('openai-chatkit')?.setOptionsCalls?.length > 0"
        )
        started = time.monotonic()
        result: dict[str, Any] = page.evaluate(
            "([op, params]) => document.querySelector('openai-chatkit').send(op, params)",
            ["threads.create", {"input": user_input("Where is order 42?")}],
        )
        elapsed = time.monotonic() - started
    finally:
        context.close()
    content_type = result.get("contentType", "")
    texts = [
        part.get("text")
        for event in result.get("events", [])
        if event.get("type") == "thread.item.done"
        and event["item"].get("type") == "assistant_message"
        for part in event["item"].get("content", [])
    ]
    if result.get("status") != 200 or not content_type.startswith("text/event-stream"):
        raise NewcomerFailure(f"the chat was not streamed: {result}")
    if answer not in texts:
        raise NewcomerFailure(f"the answer {answer!r} did not arrive; the stream said {result}")
    return {"bootstrap": bootstrap_statuses, "chat_seconds": elapsed}


def build_wheel(outdir: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(outdir),
            str(REPO),
        ],
        check=True,
    )
    [wheel] = outdir.glob("django_openai_chatkit-*.whl")
    return wheel


def timed_check(site: Site, runs: int = 3) -> float:
    """Median wall time of `manage.py check --fail-level WARNING` (which must pass)."""
    times = []
    for _ in range(runs):
        started = time.monotonic()
        site.run(["python", "manage.py", "check", "--fail-level", "WARNING"], site.project, "check")
        times.append(time.monotonic() - started)
    return sorted(times)[len(times) // 2]


def run(readme_path: Path, python: str, workdir: Path) -> None:
    from playwright.sync_api import sync_playwright

    snippets = extract_snippets(readme_path.read_text())
    if not os.access(CHROMIUM, os.X_OK):
        raise NewcomerFailure(f"Chromium is needed at {CHROMIUM}: apt-get install -y chromium")
    print(f"Newcomer test: {len(snippets)} Quickstart snippets from {readme_path}, in {workdir}")
    wheel = build_wheel(workdir / "dist")
    print(f"Wheel: {wheel.name}; Python: {python}", flush=True)
    with FakeOpenAI() as fake:
        fake.side_requests = is_title_request  # titles are answered by default_reply
        fake.default_reply = Reply(text="Order 42")
        site = Site(workdir, python, wheel, fake)
        installed_at = time.monotonic()
        first_answer_at: float | None = None
        for snippet in snippets:
            if snippet.kind != "serve":
                site.apply(snippet)
        check_seconds = timed_check(site)
        print(f"-- manage.py check --fail-level WARNING: {check_seconds:.2f} s (median of 3)")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            try:
                for snippet in (s for s in snippets if s.kind == "serve"):
                    for command in shell_commands(snippet):
                        answer = f"Order 42 shipped yesterday ({command.split()[0:3]})."
                        fake.queue(Reply(text=answer))
                        with site.server(command, snippet.where()) as url:
                            seen = chat_in_browser(browser, url, answer)
                        first_answer_at = first_answer_at or time.monotonic()
                        print(
                            f"-- {command}: signed in, bootstrap {seen['bootstrap'][-1][1]}, "
                            f"widget started, answer streamed in {seen['chat_seconds']:.2f} s",
                            flush=True,
                        )
            finally:
                browser.close()
    assert first_answer_at is not None
    print(
        f"Newcomer test passed: pip install -> first streamed answer "
        f"{first_answer_at - installed_at:.0f} s (site setup, check, first server start, "
        f"sign-in and chat); check {check_seconds:.2f} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readme", type=Path, default=REPO / "README.md")
    parser.add_argument("--python", default="python3", help="the new site's Python")
    parser.add_argument("--keep", action="store_true", help="keep the site's directory")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="chatkit-newcomer-"))
    try:
        run(args.readme.resolve(), args.python, workdir)
    except NewcomerFailure as failure:
        print(f"Newcomer test FAILED: {failure}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"Kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
