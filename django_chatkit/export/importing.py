"""Restoring an export (JSONL, or the tar with files) into the current database.

- Idempotent: a thread whose id exists already is left as it is (with everything under it), so
  running an import twice changes nothing the second time.
- One transaction per thread: a failure leaves no half thread (files stored for a thread whose
  transaction failed are removed again).
- Owners: ``OwnerResolver`` maps an exported owner (username and email) to a user of this
  database: through ``owner_map`` first, then by username, then by email. All owners are
  resolved before anything is written, so an unknown owner stops the import before it starts
  (unless ``unknown`` says to skip their threads or to create the users).
- Rows come back with their exported timestamps, including the ``auto_now`` ones.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import IO, Any

from django.contrib.auth import get_user_model
from django.core.exceptions import SuspiciousOperation
from django.core.files.base import File
from django.db import DatabaseError, transaction

from django_chatkit import models
from django_chatkit.attachments import storage
from django_chatkit.conf import chatkit_settings
from django_chatkit.export import FORMAT_VERSION
from django_chatkit.export.archive import FILES_PREFIX, JSONL_MEMBER, file_member
from django_chatkit.export.records import parse_timestamp, required_timestamp

UNKNOWN_POLICIES = ("error", "skip", "create")


class ImportRefused(Exception):
    """The export cannot be imported as it is (newer format, unknown owners, bad line)."""


@dataclass
class ImportStats:
    threads: int = 0
    skipped_existing: int = 0
    skipped_owner: int = 0
    items: int = 0
    attachments: int = 0
    files: int = 0
    feedback: int = 0
    runs: int = 0
    users_created: int = 0
    reviewers_unknown: int = 0


def _key(owner: dict[str, Any]) -> tuple[str, str]:
    return owner.get("username", ""), owner.get("email", "")


@dataclass
class OwnerResolver:
    """Exported owners -> users of this database."""

    owner_map: dict[str, str] = field(default_factory=dict)
    unknown: str = "error"
    resolved: dict[tuple[str, str], Any] = field(default_factory=dict)
    created: int = 0

    def _find(self, username: str, email: str) -> Any:
        manager = get_user_model()._default_manager
        target_username = self.owner_map.get(username) if username else None
        target_email = self.owner_map.get(email) if email else None
        target = target_username or target_email
        candidates = [target] if target else [username, email]
        for value in candidates:
            if not value:
                continue
            user = manager.filter(**{get_user_model().USERNAME_FIELD: value}).first()
            if user is not None:
                return user
            email_field = get_user_model().get_email_field_name()
            by_email = list(manager.filter(**{email_field: value})[:2]) if "@" in value else []
            if len(by_email) == 1:
                return by_email[0]
        return None

    def prepare(self, owners: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
        """Resolve every owner; the unknown ones (after ``create`` made them)."""
        unknown = []
        for owner in owners:
            key = _key(owner)
            if key in self.resolved:
                continue
            user = self._find(*key)
            if user is None and self.unknown == "create" and key[0]:
                user = self._create(*key)
            self.resolved[key] = user
            if user is None:
                unknown.append(key)
        return unknown

    def _create(self, username: str, email: str) -> Any:
        model = get_user_model()
        user = model(**{model.USERNAME_FIELD: username, model.get_email_field_name(): email})
        user.set_unusable_password()
        user.save()
        self.created += 1
        return user

    def user(self, owner: dict[str, Any]) -> Any:
        return self.resolved.get(_key(owner))


def check_version(record: dict[str, Any], line_number: int) -> None:
    version = record.get("format_version")
    if not isinstance(version, int):
        raise ImportRefused(f"line {line_number}: no format_version")
    if version > FORMAT_VERSION:
        raise ImportRefused(
            f"line {line_number}: format_version {version} is newer than this version of "
            f"django_chatkit reads ({FORMAT_VERSION}): upgrade django_chatkit to import it"
        )


def parse_lines(lines: Iterable[bytes]) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise ImportRefused(f"line {number}: not JSON ({exc})") from exc
        if not isinstance(record, dict) or not isinstance(record.get("thread"), dict):
            raise ImportRefused(f"line {number}: not a thread record")
        check_version(record, number)
        yield number, record


def record_owners(record: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every user the record names as an owner (reviewers are not owners: see ``reviewer``)."""
    for owner in (
        record["thread"]["owner"],
        *(row.get("owner") for row in record.get("attachments", [])),
        *(row.get("owner") for row in record.get("runs", [])),
    ):
        if owner and "anonymous_key" not in owner:
            yield owner


class Source:
    """An export on disk: a JSONL file, or a tar holding ``threads.jsonl`` and files."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.tar: tarfile.TarFile | None = None
        if tarfile.is_tarfile(path):
            self.tar = tarfile.open(path, "r:")  # noqa: SIM115 (closed by close())
            self.members = {
                member.name: member
                for member in self.tar.getmembers()
                if member.isfile() and (member.name.startswith(FILES_PREFIX))
            }

    def lines(self) -> Iterator[bytes]:
        if self.tar is None:
            with open(self.path, "rb") as handle:
                yield from handle
            return
        try:
            member = self.tar.extractfile(JSONL_MEMBER)
        except KeyError as exc:
            raise ImportRefused(f"{self.path}: the archive holds no {JSONL_MEMBER}") from exc
        if member is None:
            raise ImportRefused(f"{self.path}: {JSONL_MEMBER} is not a file")
        with member:
            yield from member

    def file(self, attachment_id: str) -> IO[bytes] | None:
        if self.tar is None:
            return None
        member = self.members.get(file_member(attachment_id))
        return self.tar.extractfile(member) if member is not None else None

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()


def _owner_columns(owner: dict[str, Any], owners: OwnerResolver) -> dict[str, Any]:
    if "anonymous_key" in owner:
        return {"user": None, "anonymous_key": owner["anonymous_key"]}
    return {"user": owners.user(owner), "anonymous_key": ""}


def _generated_name(name: str, attachment_id: str) -> bool:
    parts = PurePosixPath(name).parts
    return (
        name.startswith(f"{storage.PREFIX}/{attachment_id}/")
        and len(parts) == len(PurePosixPath(storage.PREFIX).parts) + 2
        and ".." not in parts
    )


def _restore_file(
    attachment: dict[str, Any], source: Source, stored: list[tuple[str, str]]
) -> dict[str, str] | None:
    """Store the archived bytes of ``attachment``; its new storage columns, or None."""
    handle = source.file(attachment["id"])
    if handle is None:
        return None
    alias = chatkit_settings.STORAGE
    with handle:
        digest = hashlib.sha256()
        while chunk := handle.read(storage.READ_CHUNK):
            digest.update(chunk)
        if attachment["sha256"] and digest.hexdigest() != attachment["sha256"]:
            raise ImportRefused(f"attachment {attachment['id']}: its file's SHA-256 differs")
        handle.seek(0)
        target = storage.get_storage(alias)
        name = attachment["storage_name"]
        if not _generated_name(name, attachment["id"]):
            # Not a name this package makes (an edited export): a new one, never its path.
            name = storage.new_name(attachment["id"], PurePosixPath(name).suffix[:16])
        if target.exists(name) and target.size(name) == attachment["size"]:
            # Restored by an earlier run whose transaction then failed, or shared storage.
            return {"storage_alias": alias, "storage_name": name}
        saved = str(target.save(name, File(handle, name)))
    stored.append((alias, saved))
    return {"storage_alias": alias, "storage_name": saved}


def import_record(
    record: dict[str, Any], owners: OwnerResolver, source: Source | None, stats: ImportStats
) -> None:
    fields = record["thread"]
    if models.Thread.objects.filter(pk=fields["id"]).exists():
        stats.skipped_existing += 1
        return
    owner = _owner_columns(fields["owner"], owners)
    if "anonymous_key" not in fields["owner"] and owner["user"] is None:
        stats.skipped_owner += 1
        return
    stored: list[tuple[str, str]] = []
    try:
        with transaction.atomic():
            _write(record, owner, owners, source, stored, stats)
    except BaseException:
        for alias, name in stored:
            storage.remove(alias, [name])
        raise


def _write(
    record: dict[str, Any],
    owner: dict[str, Any],
    owners: OwnerResolver,
    source: Source | None,
    stored: list[tuple[str, str]],
    stats: ImportStats,
) -> None:
    fields = record["thread"]
    hosted = fields.get("hosted")
    upstream: dict[str, Any] = {}
    if hosted is not None:  # an imported hosted thread (docs/hosted.md)
        upstream = {
            "source": models.ThreadSource.HOSTED,
            "upstream_cursor": hosted["upstream_cursor"],
            "upstream_updated_at": parse_timestamp(hosted["upstream_updated_at"]),
            "upstream_deleted_at": parse_timestamp(hosted["upstream_deleted_at"]),
        }
    thread = models.Thread(
        id=fields["id"],
        **owner,
        title=fields["title"],
        status=fields["status"],
        status_reason=fields["status_reason"],
        moderator_note=fields["moderator_note"],
        legal_hold=fields["legal_hold"],
        deleted_by_owner_at=parse_timestamp(fields["deleted_by_owner_at"]),
        created_at=required_timestamp(fields["created_at"]),
        updated_at=required_timestamp(fields["updated_at"]),
        allowed_image_domains=fields["allowed_image_domains"],
        metadata=fields["metadata"],
        **upstream,
    )
    thread.save(force_insert=True)
    # In the exported order: the new rows' ids keep it (created_at ties included).
    models.ThreadItem.objects.bulk_create(
        (
            models.ThreadItem(
                thread=thread,
                item_id=item["item_id"],
                type=item["type"],
                created_at=required_timestamp(item["created_at"]),
                text=item["text"],
                payload=item["payload"],
            )
            for item in record["items"]
        ),
        batch_size=1000,
    )
    stats.items += len(record["items"])
    for attachment in record["attachments"]:
        if models.Attachment.objects.filter(pk=attachment["id"]).exists():
            continue
        columns = {
            "storage_alias": attachment["storage_alias"],
            "storage_name": attachment["storage_name"],
        }
        if source is not None:
            restored = _restore_file(attachment, source, stored)
            if restored is not None:
                columns = restored
                stats.files += 1
        row_owner = _owner_columns(attachment["owner"], owners) if "owner" in attachment else owner
        models.Attachment.objects.create(
            id=attachment["id"],
            thread=thread,
            **row_owner,
            type=attachment["type"],
            name=attachment["name"],
            mime_type=attachment["mime_type"],
            payload=attachment["payload"],
            status=attachment["status"],
            incoming_name=attachment["incoming_name"],
            size=attachment["size"],
            sha256=attachment["sha256"],
            **columns,
        )
        # auto_now_add set it to now: the exported time instead (update() leaves it alone).
        models.Attachment.objects.filter(pk=attachment["id"]).update(
            created_at=required_timestamp(attachment["created_at"])
        )
        stats.attachments += 1
    for vote in record["feedback"]:
        reviewer = None
        if vote["reviewed_by"] is not None:
            reviewer = owners.user(vote["reviewed_by"])
            if reviewer is None:
                stats.reviewers_unknown += 1
        models.Feedback.objects.create(
            thread=thread,
            item_id=vote["item_id"],
            kind=vote["kind"],
            reviewed_at=parse_timestamp(vote["reviewed_at"]),
            reviewed_by=reviewer,
            review_note=vote["review_note"],
        )
        models.Feedback.objects.filter(thread=thread, item_id=vote["item_id"]).update(
            created_at=required_timestamp(vote["created_at"]),
            updated_at=required_timestamp(vote["updated_at"]),
        )
        stats.feedback += 1
    models.Run.objects.bulk_create(
        (
            models.Run(
                thread=thread,
                **(_owner_columns(run["owner"], owners) if "owner" in run else owner),
                kind=run["kind"],
                model=run["model"],
                status=run["status"],
                error_code=run["error_code"],
                error_message=run["error_message"],
                started_at=required_timestamp(run["started_at"]),
                first_token_at=parse_timestamp(run["first_token_at"]),
                finished_at=parse_timestamp(run["finished_at"]),
                input_tokens=run["input_tokens"],
                output_tokens=run["output_tokens"],
                response_id=run["response_id"],
            )
            for run in record["runs"]
        ),
        batch_size=1000,
    )
    stats.runs += len(record["runs"])
    stats.threads += 1


def reviewers(record: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for vote in record.get("feedback", []):
        if vote.get("reviewed_by"):
            yield vote["reviewed_by"]


def import_export(path: str, owners: OwnerResolver, *, with_files: bool = True) -> ImportStats:
    """Import the export at ``path``; ImportRefused before anything is written if it cannot be."""
    source = Source(path)
    try:
        # First pass: versions and owners, before any write (users created included).
        owner_keys: set[tuple[str, str]] = set()
        reviewer_keys: set[tuple[str, str]] = set()
        for _, record in parse_lines(source.lines()):
            owner_keys.update(_key(owner) for owner in record_owners(record))
            reviewer_keys.update(_key(reviewer) for reviewer in reviewers(record))
        unknown = owners.prepare({"username": u, "email": e} for u, e in sorted(owner_keys))
        if unknown and owners.unknown == "error":
            names = ", ".join(sorted({f"{u or '?'} <{e}>" if e else u for u, e in unknown}))
            raise ImportRefused(
                f"{len(set(unknown))} owner(s) have no user in this database: {names}. "
                "Map them with --owner-map OLD=NEW, or pass --unknown-owners skip or create."
            )
        # Reviewers are resolved but never created: an unknown reviewer leaves the field empty.
        policy, owners.unknown = owners.unknown, "skip"
        owners.prepare({"username": u, "email": e} for u, e in sorted(reviewer_keys))
        owners.unknown = policy
        stats = ImportStats(users_created=owners.created)
        for number, record in parse_lines(source.lines()):
            try:
                import_record(record, owners, source if with_files else None, stats)
            except (DatabaseError, SuspiciousOperation, KeyError, TypeError, ValueError) as exc:
                # This thread's transaction is rolled back; those before it stay (a re-run
                # skips them).
                raise ImportRefused(
                    f"line {number}, thread {record['thread'].get('id')!r}: not imported "
                    f"({type(exc).__name__}: {exc}); the {stats.threads} thread(s) before it "
                    "were imported"
                ) from exc
        return stats
    finally:
        source.close()
