"""Download the installed ChatKit SDK's sdist and extract its store and server tests.

``python -m tests.sdk_conformance.fetch DIR`` prints the directory holding the two test files.
The sdist comes from PyPI through pip, for exactly the installed ``openai-chatkit`` version, and
is kept in DIR (git-ignored) so that later runs need no network.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
from importlib.metadata import version
from pathlib import Path

DISTRIBUTION = "openai-chatkit"
TEST_FILES = ("test_store.py", "test_chatkit_server.py")


def sdist(version_: str, into: Path) -> Path:
    name = f"{DISTRIBUTION.replace('-', '_')}-{version_}.tar.gz"
    path = into / name
    if not path.exists():
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "--quiet"),
                *("--no-binary", ":all:", "--no-deps", "--dest", str(into)),
                f"{DISTRIBUTION}=={version_}",
            ],
            check=True,
        )
    if not path.exists():
        raise SystemExit(f"pip did not download {name} into {into}")
    return path


def extract_tests(archive: Path, into: Path) -> Path:
    """Extract just the SDK's test files into ``into`` (replacing older copies)."""
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        members = {Path(member.name).name: member for member in tar.getmembers()}
        for name in TEST_FILES:
            member = members.get(name)
            if member is None or Path(member.name).parent.name != "tests":
                raise SystemExit(f"{archive.name} has no tests/{name}")
            source = tar.extractfile(member)
            assert source is not None
            (into / name).write_bytes(source.read())
    return into


def main(directory: str) -> None:
    version_ = version(DISTRIBUTION)
    root = Path(directory) / version_
    root.mkdir(parents=True, exist_ok=True)
    print(extract_tests(sdist(version_, root), root / "tests"))


if __name__ == "__main__":
    main(*sys.argv[1:])
