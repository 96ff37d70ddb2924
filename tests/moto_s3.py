"""An S3-compatible server on loopback for the attachment tests: moto's server mode.

``moto_server`` runs as a subprocess (one per test session, through a session fixture); each
test gets a fresh bucket (valid S3 names: lowercase letters, digits and hyphens) and a
``STORAGES`` alias pointing django-storages' ``S3Storage`` at it. Test modules wrap these
generators in fixtures::

    @pytest.fixture(scope="session")
    def s3_endpoint():
        yield from moto_s3.serve()
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from django.test import override_settings

from tests.processes import free_port, stop_process, wait_until_listening

ACCESS_KEY = "chatkit-test-key"
SECRET_KEY = "chatkit-test-secret"
REGION = "us-east-1"
ALIAS = "chatkit"


def _moto_command(port: int) -> list[str]:
    script = Path(sys.executable).with_name("moto_server")
    exe = str(script) if script.exists() else shutil.which("moto_server")
    if exe is None:
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")
    return [exe, "-H", "127.0.0.1", "-p", str(port)]


def serve() -> Iterator[str]:
    """Run moto_server on a free loopback port; yield its URL; stop it afterwards."""
    port = free_port()
    process = subprocess.Popen(
        _moto_command(port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"},
    )
    try:
        wait_until_listening(process, ("127.0.0.1", port), 30, name="moto_server")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process, 10)


@dataclass
class Bucket:
    name: str
    client: Any
    endpoint: str

    def keys(self, prefix: str = "") -> list[str]:
        listing = self.client.list_objects_v2(Bucket=self.name, Prefix=prefix)
        return sorted(entry["Key"] for entry in listing.get("Contents", []))

    def read(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.name, Key=key)["Body"].read())


def storages_for(bucket: Bucket, tmp_path: Path) -> dict[str, Any]:
    return {
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "default")},
        },
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        ALIAS: {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket.name,
                "endpoint_url": bucket.endpoint,
                "access_key": ACCESS_KEY,
                "secret_key": SECRET_KEY,
                "region_name": REGION,
                "signature_version": "s3v4",
                "addressing_style": "path",
                "file_overwrite": False,
            },
        },
    }


def bucket_with_storages(s3_endpoint: str, tmp_path: Path) -> Iterator[Bucket]:
    """A fresh bucket, and STORAGES with the alias ``"chatkit"`` on it, for the ``with`` span."""
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
    )
    bucket = Bucket(f"chatkit-test-{secrets.token_hex(6)}", client, s3_endpoint)
    client.create_bucket(Bucket=bucket.name)
    with override_settings(STORAGES=storages_for(bucket, tmp_path)):
        yield bucket
