"""pytest plugin for the SDK's own tests: ``python -m pytest -p tests.sdk_conformance.plugin DIR``.

- The modules the SDK tests import from helpers they do not ship resolve to ours
  (``helpers.mock_store``, ``tests._types``), and ``tests.test_store`` to the SDK's own file (so
  our ``tests`` package, which holds the settings, stays in place).
- Async tests run through ``async_to_sync`` (pytest-asyncio is off: ``-p no:asyncio``), so the
  store's ORM work comes back to the test's own thread and connection and each test is rolled
  back like any ``django_db`` test, instead of a flush of every table after each one.
- The SDK tests' user names map to Django users created on first use.
- The deliberate differences in ``expected_differences.txt`` are strict xfails with their
  reason: each must still fail, and any other failure fails the run.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import inspect
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pytest
from asgiref.sync import async_to_sync

EXPECTED_DIFFERENCES = Path(__file__).with_name("expected_differences.txt")

# Module the SDK tests import -> module that provides it.
ALIASES = {
    "helpers": "tests.sdk_conformance",
    "helpers.mock_store": "tests.sdk_conformance.mock_store",
    "tests._types": "tests.sdk_conformance.request_context",
    # pytest imports the collected SDK file as ``test_store`` (its directory goes on sys.path).
    "tests.test_store": "test_store",
}


class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports each alias as the very module object it stands for (no second copy)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in ALIASES:
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=fullname == "helpers")

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(ALIASES[spec.name])

    def exec_module(self, module: ModuleType) -> None:
        pass  # already executed under its own name


def read_expected_differences(path: Path = EXPECTED_DIFFERENCES) -> dict[str, str]:
    """``test id -> reason``, from lines ``file.py::Class::test  reason`` (``#`` comments)."""
    differences = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            test_id, _, reason = line.partition(" ")
            differences[test_id] = reason.strip()
    return differences


def short_id(item: pytest.Item) -> str:
    """The test id without the download directory: ``test_store.py::TestSqliteStore::test_x``."""
    return item.nodeid.rsplit("/", 1)[-1]


def pytest_addoption(parser: pytest.Parser) -> None:
    # pyproject.toml configures pytest-asyncio for our own suite; known here, so not warned about.
    for name in ("asyncio_mode", "asyncio_default_fixture_loop_scope"):
        parser.addini(name, "pytest-asyncio's (off for the SDK's tests)")


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.has_plugin("asyncio"):
        raise pytest.UsageError("run the SDK's tests with -p no:asyncio (see this plugin)")
    # The SDK's store tests carry the mark; it means nothing more than "async" here.
    config.addinivalue_line("markers", "asyncio: an async test (run through async_to_sync)")
    sys.meta_path.insert(0, _AliasFinder())


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run an async test in asgiref's event loop thread, its database work in this thread."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    arguments = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    async_to_sync(pyfuncitem.obj)(**arguments)
    return True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    differences = read_expected_differences()
    unknown = set(differences) - {short_id(item) for item in items}
    if unknown and not config.option.keyword and not config.option.markexpr:
        raise pytest.UsageError(
            f"{EXPECTED_DIFFERENCES.name} lists tests the SDK no longer has: {sorted(unknown)}"
        )
    for item in items:
        item.add_marker(pytest.mark.django_db)
        reason = differences.get(short_id(item))
        if reason is not None:
            item.add_marker(pytest.mark.xfail(strict=True, reason=f"deliberate: {reason}"))


@pytest.fixture(autouse=True)
def fresh_request_contexts() -> None:
    """Each test starts with new users (the last test's were rolled back with its data)."""
    from tests.sdk_conformance import request_context

    request_context.start_test()
