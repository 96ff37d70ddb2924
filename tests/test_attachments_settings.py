"""Attachment settings: their system checks by id, how ENABLED and ATTACHMENT_STORE choose the
store, and the widget options derived from the same limits the server enforces."""

from __future__ import annotations

import pytest
from django.test import override_settings

from django_chatkit.attachments import widget_options
from django_chatkit.attachments.store import DjangoAttachmentStore
from django_chatkit.checks import check_settings
from django_chatkit.loading import get_attachment_store, get_server

GOOD = {"SERVER": "tests.servers.ScriptedServer"}
S3_STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "s3": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {"bucket_name": "b"}},
}


def ids(messages) -> list[str]:
    return [message.id for message in messages]


@pytest.mark.parametrize(
    "attachments",
    [
        "yes",
        {"ENABLED": "yes"},
        {"MAX_BYTES": 0},
        {"MAX_COUNT": -1},
        {"MAX_DECODE_BYTES": 0},
        {"MAX_CONCURRENT_DECODES": "2"},
        {"MAX_SIZE": 10},  # unknown key
        {"ALLOWED_TYPES": ["image/png"]},
        {"ALLOWED_TYPES": {"image/png": "png"}},
        {"ALLOWED_TYPES": {"Image/PNG": [".png"]}},
        {"ALLOWED_TYPES": {"image/svg+xml": [".svg"]}},  # cannot be verified
        {"ALLOWED_TYPES": {"application/x-unknown": [".bin"]}},
    ],
)
def test_e010_attachments_setting(attachments):
    with override_settings(CHATKIT={**GOOD, "ATTACHMENTS": attachments}):
        assert ids(check_settings(None)) == ["chatkit.E010"]


@pytest.mark.parametrize(
    ("per_owner", "problem"),
    [
        ({"MAX_PENDING_PER_OWNER": 0}, "MAX_PENDING_PER_OWNER must be None or a positive integer"),
        ({"MAX_PENDING_PER_OWNER": "10"}, "MAX_PENDING_PER_OWNER must be None or a positive"),
        ({"MAX_BYTES_PER_OWNER": -1}, "MAX_BYTES_PER_OWNER must be None or a positive integer"),
        ({"MAX_BYTES_PER_OWNER": True}, "MAX_BYTES_PER_OWNER must be None or a positive integer"),
        ({"MAX_BYTES_PER_OWNER": 1.5e9}, "MAX_BYTES_PER_OWNER must be None or a positive integer"),
        (  # a message with the most attachments could never be sent
            {"MAX_COUNT": 4, "MAX_PENDING_PER_OWNER": 3},
            "MAX_PENDING_PER_OWNER (3) is below MAX_COUNT (4)",
        ),
        (  # a file of the largest accepted size could never be stored
            {"MAX_BYTES": 1000, "MAX_BYTES_PER_OWNER": 999},
            "MAX_BYTES_PER_OWNER (999) is below MAX_BYTES (1000)",
        ),
    ],
)
def test_e010_per_owner_limits(per_owner, problem):
    with override_settings(CHATKIT={**GOOD, "ATTACHMENTS": per_owner}):
        [message] = check_settings(None)
    assert message.id == "chatkit.E010"
    assert problem in message.msg


@pytest.mark.parametrize(
    "per_owner",
    [
        {"MAX_PENDING_PER_OWNER": None, "MAX_BYTES_PER_OWNER": None},  # unlimited
        {"MAX_COUNT": 4, "MAX_PENDING_PER_OWNER": 4, "MAX_BYTES": 10, "MAX_BYTES_PER_OWNER": 10},
    ],
)
def test_e010_quiet_for_sensible_per_owner_limits(per_owner):
    with override_settings(CHATKIT={**GOOD, "ATTACHMENTS": per_owner}):
        assert check_settings(None) == []


def test_e010_suggests_the_key_meant():
    with override_settings(CHATKIT={**GOOD, "ATTACHMENTS": {"MAX_BYTE": 10}}):
        [message] = check_settings(None)
    assert "did you mean 'MAX_BYTES'" in message.msg


def test_e010_quiet_for_verifiable_types():
    types = {
        "image/png": [".png"],
        "application/json": [".json"],
        "application/zip": [".zip"],
        "image/bmp": [".bmp"],
        "text/x-python": [".py"],
    }
    with override_settings(
        CHATKIT={**GOOD, "ATTACHMENTS": {"ENABLED": True, "ALLOWED_TYPES": types}}
    ):
        assert check_settings(None) == []


def test_e010_quiet_for_a_decode_budget():
    attachments = {
        "ENABLED": True,
        "MAX_DECODE_BYTES": 64 * 1024 * 1024,
        "MAX_CONCURRENT_DECODES": 4,
    }
    with override_settings(CHATKIT={**GOOD, "ATTACHMENTS": attachments}):
        assert check_settings(None) == []


@override_settings(CHATKIT={**GOOD, "STORAGE": "uploads"})
def test_e011_storage_alias_must_exist():
    assert ids(check_settings(None)) == ["chatkit.E011"]


@pytest.mark.parametrize(
    "origins",
    [
        "https://cdn.platform.openai.com",
        ["cdn.platform.openai.com"],
        ["https://a.example/path"],
        [None],
    ],
)
def test_e012_upload_allowed_origins(origins):
    with override_settings(CHATKIT={**GOOD, "UPLOAD_ALLOWED_ORIGINS": origins}):
        assert ids(check_settings(None)) == ["chatkit.E012"]


@pytest.mark.parametrize("key", ["UPLOAD_TOKEN_MAX_AGE", "ORPHAN_UPLOAD_MAX_AGE"])
@pytest.mark.parametrize("value", [0, -5, "300", None])
def test_e006_upload_ages_are_positive_integers(key, value):
    with override_settings(CHATKIT={**GOOD, key: value}):
        assert ids(check_settings(None)) == ["chatkit.E006"]


@override_settings(CHATKIT={**GOOD, "S3_PRESIGNED_UPLOADS": True})
def test_w003_presigned_uploads_need_s3():
    assert ids(check_settings(None)) == ["chatkit.W003"]


def test_w003_quiet_on_s3():
    with override_settings(
        STORAGES=S3_STORAGES, CHATKIT={**GOOD, "STORAGE": "s3", "S3_PRESIGNED_UPLOADS": True}
    ):
        assert check_settings(None) == []


class TestWhichStore:
    def test_none_by_default(self):
        assert get_attachment_store() is None

    @override_settings(CHATKIT={**GOOD, "ATTACHMENTS": {"ENABLED": True}})
    def test_enabled_means_the_django_store(self):
        assert isinstance(get_attachment_store(), DjangoAttachmentStore)
        assert isinstance(get_server().attachment_store, DjangoAttachmentStore)

    @override_settings(
        CHATKIT={**GOOD, "ATTACHMENT_STORE": "tests.test_cross_owner.NoopAttachmentStore"}
    )
    def test_an_explicit_store_wins(self):
        assert type(get_attachment_store()).__name__ == "NoopAttachmentStore"
        assert widget_options()["composer"]["attachments"]["enabled"] is True


class TestWidgetOptions:
    def test_disabled_by_default_with_the_same_shape(self):
        options = widget_options()
        assert options["composer"]["attachments"]["enabled"] is False
        assert options["uploadStrategy"] == {"type": "two_phase"}
        assert set(options["composer"]["attachments"]) == {
            "enabled",
            "maxSize",
            "maxCount",
            "accept",
        }

    def test_limits_come_from_the_settings_the_server_enforces(self):
        limits = {
            "ENABLED": True,
            "MAX_BYTES": 5_000_000,
            "MAX_COUNT": 2,
            "ALLOWED_TYPES": {"image/png": [".png"], "application/pdf": [".pdf"]},
        }
        with override_settings(CHATKIT={**GOOD, "ATTACHMENTS": limits}):
            assert widget_options() == {
                "composer": {
                    "attachments": {
                        "enabled": True,
                        "maxSize": 5_000_000,
                        "maxCount": 2,
                        "accept": {"image/png": [".png"], "application/pdf": [".pdf"]},
                    }
                },
                "uploadStrategy": {"type": "two_phase"},
            }

    @override_settings(CHATKIT={**GOOD, "ATTACHMENTS": {"MAX_BYTES": 1234}})
    def test_partial_settings_merge_over_the_defaults(self):
        attachments = widget_options()["composer"]["attachments"]
        assert attachments["maxSize"] == 1234 and attachments["maxCount"] == 4
        assert attachments["accept"]["image/jpeg"] == [".jpg", ".jpeg"]
