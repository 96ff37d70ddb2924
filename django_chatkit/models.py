"""Threads, their items, attachments and feedback, owned by a user or an anonymous session.

Real columns hold what is filtered or ordered; ``payload`` holds the SDK object verbatim
(``model_dump(mode="json")``) so every item type round-trips exactly.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import formats, timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from django_chatkit.deletion import CASCADE_OWNED
from django_chatkit.ids import new_typed_id

# Responses API message ids reused as item ids are long; leave room for custom id schemes.
ID_LENGTH = 255


class OwnedModel(models.Model):
    """A row owned by exactly one of: a user, or an anonymous session token."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        # CASCADE, also on MySQL / MariaDB: see django_chatkit.deletion.
        on_delete=CASCADE_OWNED,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("user"),
    )
    anonymous_key = models.CharField(_("anonymous key"), max_length=64, blank=True, default="")

    class Meta:
        abstract = True


class ThreadStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    LOCKED = "locked", _("Locked")
    CLOSED = "closed", _("Closed")


class ThreadSource(models.TextChoices):
    # Answered by this site's server (the ChatKit protocol endpoint).
    SELF = "self", _("Self-hosted")
    # Run and kept by OpenAI (an Agent Builder workflow), imported here for review
    # (django_chatkit.hosted.importing): the id is the upstream thread's.
    HOSTED = "hosted", _("Hosted by OpenAI")


def new_thread_id() -> str:
    return new_typed_id("thread")


class Thread(OwnedModel):
    id = models.CharField(_("id"), primary_key=True, max_length=ID_LENGTH, default=new_thread_id)
    title = models.TextField(_("title"), blank=True, default="")
    status = models.CharField(
        _("status"), max_length=16, choices=ThreadStatus.choices, default=ThreadStatus.ACTIVE
    )
    # What the owner is told when the thread refuses a message (locked / closed): public.
    status_reason = models.TextField(
        _("message to the user"),
        blank=True,
        default="",
        help_text=_("Shown to the thread's owner when it refuses a new message."),
    )
    # Why a moderator locked or closed it: staff only, never sent to the client.
    # The columns added for moderation have database defaults too (db_default): workers of the
    # release before, still serving during a rolling deploy, insert threads without them.
    moderator_note = models.TextField(
        _("internal note"),
        blank=True,
        default="",
        db_default="",
        help_text=_("For staff only: never shown to the thread's owner."),
    )
    # On legal hold: the owner can neither delete nor rename it, and no purge removes it.
    legal_hold = models.BooleanField(_("legal hold"), default=False, db_default=False)
    # The owner deleted it while on hold: hidden from them, kept for staff.
    deleted_by_owner_at = models.DateTimeField(_("deleted by owner at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), db_index=True)
    updated_at = models.DateTimeField(_("updated at"))
    allowed_image_domains = models.JSONField(_("allowed image domains"), null=True, blank=True)
    # Server-side only (ThreadMetadata.metadata): never sent to the client.
    metadata = models.JSONField(_("metadata"), default=dict, blank=True)
    # Taken over by staff (django_chatkit.live.staff): while set, the agent does not answer.
    # The time is the flag; the user is who took it (kept null if that account is deleted).
    taken_over_at = models.DateTimeField(_("taken over at"), null=True, blank=True)
    taken_over_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("taken over by"),
    )

    # Hosted mode (docs/hosted.md). Imported threads are not served by this site's
    # protocol endpoint: their owner sees them in the hosted widget, from OpenAI.
    source = models.CharField(
        _("source"),
        max_length=16,
        choices=ThreadSource.choices,
        default=ThreadSource.SELF,
        db_default=ThreadSource.SELF,
    )
    # Where the next import of this thread's items resumes: the last upstream item imported
    # whose content can no longer change ("" : from the start).
    upstream_cursor = models.CharField(
        _("upstream cursor"), max_length=ID_LENGTH, blank=True, default="", db_default=""
    )
    # When the thread was last active upstream (its newest item), as last imported.
    upstream_updated_at = models.DateTimeField(_("upstream activity at"), null=True, blank=True)
    # Found deleted upstream by an import (kept here until retention or staff delete it).
    upstream_deleted_at = models.DateTimeField(_("deleted upstream at"), null=True, blank=True)

    class Meta:
        verbose_name = _("thread")
        verbose_name_plural = _("threads")
        ordering = ["-created_at", "-id"]
        indexes = [
            # threads.list keyset pagination, per owner, both directions.
            models.Index(fields=["user", "created_at", "id"], name="chatkit_thread_user_page"),
            models.Index(
                fields=["anonymous_key", "created_at", "id"],
                name="chatkit_thread_anon_page",
                condition=Q(user__isnull=True),
            ),
            models.Index(fields=["status", "updated_at"], name="chatkit_thread_status"),
            # The admin's changelist, newest activity first, and its legal hold filter.
            models.Index(fields=["updated_at", "id"], name="chatkit_thread_activity"),
            models.Index(
                fields=["updated_at"], name="chatkit_thread_held", condition=Q(legal_hold=True)
            ),
            # The admin's source filter: hosted threads only (few next to the rest, or all).
            models.Index(
                fields=["updated_at"],
                name="chatkit_thread_hosted",
                condition=Q(source="hosted"),
            ),
        ]
        permissions = [
            ("moderate_thread", _("Can lock, close, reopen and put on legal hold")),
            ("export_thread", _("Can export threads")),
            ("import_hosted", _("Can import hosted conversations from OpenAI")),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False, anonymous_key="")
                | Q(user__isnull=True) & ~Q(anonymous_key=""),
                name="chatkit_thread_one_owner",
            ),
        ]

    def __str__(self) -> str:
        if self.title:
            return self.title
        # Untitled (titles are off, or not written yet): the creation date tells such threads
        # apart in the admin's lists without reading their first message (a query per row).
        created = self.created_at
        if created is None:  # not saved yet
            return gettext("Untitled conversation")
        if timezone.is_aware(created):
            created = timezone.localtime(created)
        return gettext("Untitled conversation, %(created)s") % {
            "created": formats.date_format(created, "SHORT_DATETIME_FORMAT")
        }


class HostedUser(OwnedModel):
    """An owner's identifier in OpenAI's hosted ChatKit (django_chatkit.hosted.identity)."""

    upstream_user = models.CharField(_("upstream user"), max_length=64, unique=True)
    # One row per owner ("user:<pk>" or "anonymous:<key>"): a plain unique column, as MariaDB
    # has no partial unique index.
    owner_key = models.CharField(_("owner"), max_length=128, unique=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    # When the owner last had a client secret minted, and when their threads were last
    # imported: the import visits those who opened a session since.
    last_session_at = models.DateTimeField(_("last session at"), null=True, blank=True)
    last_imported_at = models.DateTimeField(_("last imported at"), null=True, blank=True)

    class Meta:
        verbose_name = _("hosted user")
        verbose_name_plural = _("hosted users")
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False, anonymous_key="")
                | Q(user__isnull=True) & ~Q(anonymous_key=""),
                name="chatkit_hosteduser_one_owner",
            ),
        ]

    def __str__(self) -> str:
        return self.upstream_user


class HostedDeletion(models.Model):
    """A hosted thread deleted here whose deletion upstream (at OpenAI) is still to be done.

    Written in the transaction that deletes the thread, whatever deletes it (retention, the
    admin, a user's erasure), and removed once OpenAI confirms (or says the thread is already
    gone): a failure upstream never loses track of what is left to delete there, and an import
    never brings such a thread back (django_chatkit.hosted.deleting).
    """

    thread_id = models.CharField(_("thread id"), max_length=ID_LENGTH, unique=True)
    requested_at = models.DateTimeField(_("requested at"), auto_now_add=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_attempt_at = models.DateTimeField(_("last attempt at"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True, default="")

    class Meta:
        verbose_name = _("pending upstream deletion")
        verbose_name_plural = _("pending upstream deletions")
        ordering = ["requested_at", "id"]

    def __str__(self) -> str:
        return self.thread_id


class ThreadItem(models.Model):
    # Internal, auto-incrementing: breaks created_at ties in insertion order.
    id = models.BigAutoField(primary_key=True)
    # Indexed by chatkit_item_page and chatkit_item_unique_id, both led by thread.
    thread = models.ForeignKey(
        Thread,
        on_delete=models.CASCADE,
        related_name="items",
        db_index=False,
        verbose_name=_("thread"),
    )
    item_id = models.CharField(_("item id"), max_length=ID_LENGTH)
    type = models.CharField(_("type"), max_length=32, db_index=True)
    created_at = models.DateTimeField(_("created at"))
    # Plain text of messages, for search and review.
    text = models.TextField(_("text"), blank=True, default="")
    payload = models.JSONField()
    # A reply written by staff in the admin during a takeover (an assistant message): who.
    staff_author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        verbose_name=_("staff author"),
    )

    class Meta:
        verbose_name = _("thread item")
        verbose_name_plural = _("thread items")
        ordering = ["created_at", "id"]
        indexes = [
            # items.list keyset pagination in both directions.
            models.Index(fields=["thread", "created_at", "id"], name="chatkit_item_page"),
            # Staff replies are rare: a small index, for deleting a staff account (SET_NULL).
            models.Index(
                fields=["staff_author"],
                name="chatkit_item_staff_author",
                condition=Q(staff_author__isnull=False),
            ),
        ]
        constraints = [
            # Item ids come from the SDK (or the Responses API): unique within their thread.
            models.UniqueConstraint(fields=["thread", "item_id"], name="chatkit_item_unique_id"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.item_id}"


class AttachmentStatus(models.TextChoices):
    # Created by attachments.create, waiting for its bytes (two-phase upload).
    PENDING = "pending", _("Pending upload")
    READY = "ready", _("Ready")


class Attachment(OwnedModel):
    id = models.CharField(_("id"), primary_key=True, max_length=ID_LENGTH)
    thread = models.ForeignKey(
        Thread,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="attachments",
        verbose_name=_("thread"),
    )
    type = models.CharField(_("type"), max_length=16)  # "file" | "image"
    # The client's file name, kept for display only: storage names are generated.
    name = models.TextField(_("name"))
    mime_type = models.CharField(_("MIME type"), max_length=255)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    payload = models.JSONField()
    # Rows saved by other attachment stores have no upload phase: they are ready as saved.
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=AttachmentStatus.choices,
        default=AttachmentStatus.READY,
    )
    # Where the verified bytes are: a STORAGES alias and a generated name within it.
    storage_alias = models.CharField(_("storage alias"), max_length=64, blank=True, default="")
    storage_name = models.CharField(_("storage name"), max_length=1024, blank=True, default="")
    # Presigned S3 uploads: where the browser puts the bytes before they are verified.
    incoming_name = models.CharField(_("incoming name"), max_length=1024, blank=True, default="")
    size = models.PositiveBigIntegerField(_("size"), null=True, blank=True)
    sha256 = models.CharField(_("SHA-256"), max_length=64, blank=True, default="")

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        indexes = [
            models.Index(fields=["user", "created_at"], name="chatkit_attachment_user"),
            models.Index(
                fields=["anonymous_key", "created_at"],
                name="chatkit_attachment_anon",
                condition=Q(user__isnull=True),
            ),
            # Orphan cleanup: old pending uploads and uploads never sent.
            models.Index(fields=["status", "created_at"], name="chatkit_attachment_status"),
            # The attachments admin's order, newest first.
            models.Index(fields=["created_at", "id"], name="chatkit_attachment_recent"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False, anonymous_key="")
                | Q(user__isnull=True) & ~Q(anonymous_key=""),
                name="chatkit_attachment_one_owner",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class AttachmentOwnerLock(models.Model):
    """One row per owner who has made attachments: the row locked while an attachment of theirs
    is admitted under the per-owner limits, so that two requests of one owner count one at a
    time (``django_chatkit.attachments.owner_quota``). It holds no counts: the attachments are
    counted, so any way of deleting them frees the quota."""

    # "user:<pk>" or "anonymous:<key>": one unique column, so one upsert takes the lock.
    owner_key = models.CharField(_("owner"), primary_key=True, max_length=ID_LENGTH)
    # When the row was last locked; chatkit_cleanup_uploads removes rows idle for long.
    touched_at = models.DateTimeField(_("touched at"))

    class Meta:
        verbose_name = _("attachment owner lock")
        verbose_name_plural = _("attachment owner locks")

    def __str__(self) -> str:
        return self.owner_key


class FeedbackKind(models.TextChoices):
    POSITIVE = "positive", _("Positive")
    NEGATIVE = "negative", _("Negative")


class Feedback(models.Model):
    """The thread owner's vote on one item of the thread: one per item, changeable.

    The item is referenced by its id within the thread, not by a foreign key, so that items
    (which have no dependent rows) can be deleted in bulk with one DELETE.
    """

    # Indexed by chatkit_feedback_one_vote, led by thread.
    thread = models.ForeignKey(
        Thread,
        on_delete=models.CASCADE,
        related_name="feedback",
        db_index=False,
        verbose_name=_("thread"),
    )
    item_id = models.CharField(_("item id"), max_length=ID_LENGTH)
    kind = models.CharField(_("kind"), max_length=16, choices=FeedbackKind.choices)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    # The review queue: a moderator marks a vote reviewed, with a note for other staff.
    reviewed_at = models.DateTimeField(_("reviewed at"), null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("reviewed by"),
    )
    review_note = models.TextField(_("review note"), blank=True, default="", db_default="")

    class Meta:
        verbose_name = _("feedback")
        verbose_name_plural = _("feedback")
        indexes = [models.Index(fields=["kind", "updated_at"], name="chatkit_feedback_kind")]
        constraints = [
            models.UniqueConstraint(fields=["thread", "item_id"], name="chatkit_feedback_one_vote"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} on {self.item_id}"


class RunStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")
    FAILED = "failed", _("Failed")


class RunKind(models.TextChoices):
    ANSWER = "answer", _("Answer")
    TITLE = "title", _("Title")


class Run(OwnedModel):
    """One model call: what it cost, how long it took and how it ended (admin, quotas)."""

    # Indexed by chatkit_run_thread, led by thread.
    thread = models.ForeignKey(
        Thread,
        on_delete=models.CASCADE,
        related_name="runs",
        db_index=False,
        verbose_name=_("thread"),
    )
    kind = models.CharField(_("kind"), max_length=16, choices=RunKind.choices)
    model = models.CharField(_("model"), max_length=255, blank=True, default="")
    status = models.CharField(
        _("status"), max_length=16, choices=RunStatus.choices, default=RunStatus.RUNNING
    )
    error_code = models.CharField(_("error code"), max_length=64, blank=True, default="")
    error_message = models.TextField(_("error message"), blank=True, default="")
    started_at = models.DateTimeField(_("started at"))
    first_token_at = models.DateTimeField(_("first token at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    input_tokens = models.PositiveIntegerField(_("input tokens"), default=0)
    output_tokens = models.PositiveIntegerField(_("output tokens"), default=0)
    response_id = models.CharField(_("response id"), max_length=255, blank=True, default="")
    # A moderator's stop (django_chatkit.stops): set on the running answer by the admin, read
    # by the worker streaming it, which then records the run cancelled.
    stop_requested_at = models.DateTimeField(_("stop requested at"), null=True, blank=True)
    stopped_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("stopped by"),
    )

    class Meta:
        verbose_name = _("run")
        verbose_name_plural = _("runs")
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["thread", "started_at"], name="chatkit_run_thread"),
            models.Index(fields=["user", "started_at"], name="chatkit_run_user"),
            models.Index(fields=["status", "started_at"], name="chatkit_run_status"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.model} {self.status}"
