"""Moderation in the threads admin: lock, close, reopen, legal hold and its release.

Each action asks for its reasons on a confirmation page (as Django's delete does) and records
one entry per thread in the admin's history (``LogEntry``) with what changed and why. Two texts
are kept apart and the form says which is which: the *message to the user*
(``Thread.status_reason``) is public, the endpoint shows it to the owner when the thread refuses
something; the *internal note* (``Thread.moderator_note``) is for staff only.

Bulk actions never blindly overwrite per-thread text: an empty field keeps each thread's own
message or note, and whatever a change replaces is written into that thread's history first.

Only users with the ``moderate_thread`` permission are offered these actions; Django's
changelist refuses any other action name ("No action selected"), and each action checks the
permission again before doing anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.functional import Promise
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from django_chatkit import models, stops
from django_chatkit.admin.common import ThreadModelAdmin, owner_label
from django_chatkit.live import notices
from django_chatkit.live.layer import live_enabled

if TYPE_CHECKING:
    from django.utils.datastructures import _ListOrTuple

# The change page's moderation fields: read-only there (changed only through the actions below,
# which ask for reasons and keep the history). "deleted_by_owner" is ThreadModerationAdmin's.
MODERATION_FIELDS = (
    "status",
    "status_reason",
    "moderator_note",
    "legal_hold",
    "deleted_by_owner",
)
# Threads listed by name on a confirmation page; the rest are counted.
LISTED_ON_CONFIRMATION = 100
# Rows per UPDATE / INSERT: a "select all" over many threads stays within parameter limits.
BATCH = 500
# What a thread's history needs of it (its name, and the values a change replaces).
_FIELDS = (
    "id",
    "title",
    "created_at",
    "status",
    "status_reason",
    "moderator_note",
    "legal_hold",
    "deleted_by_owner_at",
)
_FORM_PREFIX = "moderation"

_PUBLIC_HELP = _(
    "Public: shown to each thread's owner when the thread refuses a message. Leave empty to keep "
    "each thread's current message (a thread without one just says it is locked or closed)."
)
_INTERNAL_HELP = _(
    "Staff only: never shown to the owner. Leave empty to keep each thread's current note. "
    "Recorded in each thread's history with the action."
)


class StatusForm(forms.Form):
    """Lock and close: what the owner is told, and what staff keep for themselves."""

    status_reason = forms.CharField(
        label=_("Message to the user (public)"),
        help_text=_PUBLIC_HELP,
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
    )
    moderator_note = forms.CharField(
        label=_("Internal note (staff only)"),
        help_text=_INTERNAL_HELP,
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
    )


class ReopenForm(forms.Form):
    moderator_note = forms.CharField(
        label=_("Internal note (staff only)"),
        help_text=_INTERNAL_HELP,
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
    )


class HoldForm(forms.Form):
    """Legal hold and its release: why (a case, a request), for staff and the history only."""

    reason = forms.CharField(
        label=_("Reason (staff only)"),
        help_text=_(
            "Why, e.g. the case or request it answers. Never shown to the owner; recorded in "
            "each thread's history."
        ),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
    )


# A thread and the form's cleaned data -> the fields to change and the history's message, or
# None when the action changes nothing on this thread.
Plan = Callable[[models.Thread, dict[str, str]], tuple[dict[str, Any], str] | None]


@dataclass(frozen=True)
class Step:
    action: str
    title: str | Promise
    intro: str | Promise
    submit: str | Promise
    form_class: type[forms.Form]
    plan: Plan
    done: Callable[[int], str]
    unchanged: Callable[[int], str]


def _quoted(text: str) -> str:
    return gettext("“%(text)s”") % {"text": text}


@dataclass(frozen=True)
class _Wording:
    """The history's sentences about one text field (whole sentences, for translators)."""

    new: str | Promise
    kept: str | Promise
    none: str | Promise


_MESSAGE = _Wording(
    new=_("Message to the user: %(text)s."),
    kept=_("Message to the user kept: %(text)s."),
    none=_("No message to the user."),
)
_NOTE = _Wording(
    new=_("Internal note: %(text)s."),
    kept=_("Internal note kept: %(text)s."),
    none=_("No internal note."),
)


def _text_change(wording: _Wording, old: str, new: str) -> tuple[str, str]:
    """The value ``new`` (empty: keep ``old``) gives the field, and the history's sentence,
    which names the text replaced so that the history keeps every version."""
    if not new:
        if old:
            return old, str(wording.kept) % {"text": _quoted(old)}
        return old, str(wording.none)
    sentence = str(wording.new) % {"text": _quoted(new)}
    if old and old != new:
        sentence += " " + gettext("It replaces %(text)s.") % {"text": _quoted(old)}
    return new, sentence


def _status_label(status: str) -> str:
    return str(models.ThreadStatus(status).label)


def _set_status(status: str, done: str | Promise, updated: str | Promise) -> Plan:
    """Lock or close: ``done`` names the status left, ``updated`` says only the texts changed."""

    def plan(thread: models.Thread, data: dict[str, str]) -> tuple[dict[str, Any], str] | None:
        reason, reason_sentence = _text_change(
            _MESSAGE, thread.status_reason, data["status_reason"]
        )
        note, note_sentence = _text_change(_NOTE, thread.moderator_note, data["moderator_note"])
        target = {"status": status, "status_reason": reason, "moderator_note": note}
        changes = {name: value for name, value in target.items() if getattr(thread, name) != value}
        if not changes:
            return None
        if "status" in changes:
            first = str(done) % {"status": _status_label(thread.status)}
        else:
            first = str(updated)
        return changes, " ".join((first, reason_sentence, note_sentence))

    return plan


def _reopen(thread: models.Thread, data: dict[str, str]) -> tuple[dict[str, Any], str] | None:
    # The message to the user goes: it described a refusal that no longer holds, and left in
    # place it would silently come back with the next lock (whose empty field keeps it). Its
    # history is this entry. The internal note stays: it is staff's memory of the thread.
    if thread.status == models.ThreadStatus.ACTIVE:
        return None
    sentences = [gettext("Reopened (was %(status)s).") % {"status": _status_label(thread.status)}]
    if thread.status_reason:
        removed = gettext("Message to the user removed: %(text)s.")
        sentences.append(removed % {"text": _quoted(thread.status_reason)})
    note, note_sentence = _text_change(_NOTE, thread.moderator_note, data["moderator_note"])
    sentences.append(note_sentence)
    changes = {
        "status": models.ThreadStatus.ACTIVE.value,
        "status_reason": "",
        "moderator_note": note,
    }
    return changes, " ".join(sentences)


def _hold(thread: models.Thread, data: dict[str, str]) -> tuple[dict[str, Any], str] | None:
    if thread.legal_hold:
        return None
    reason = gettext("Reason: %(text)s.") % {"text": _quoted(data["reason"])}
    return {"legal_hold": True}, gettext("Put on legal hold.") + " " + reason


def _release(thread: models.Thread, data: dict[str, str]) -> tuple[dict[str, Any], str] | None:
    if not thread.legal_hold:
        return None
    sentences = [
        gettext("Legal hold released."),
        gettext("Reason: %(text)s.") % {"text": _quoted(data["reason"])},
    ]
    if thread.deleted_by_owner_at is not None:
        sentences.append(gettext("Its owner had deleted it; it stays hidden from them."))
    return {"legal_hold": False}, " ".join(sentences)


def _counted(message: Callable[[int], str]) -> Callable[[int], str]:
    # ``message`` calls ngettext itself (so that makemessages finds both forms) at call time:
    # the message is in the language of the request that runs the action.
    return lambda count: message(count) % {"count": count}


LOCK = Step(
    action="lock_threads",
    title=_("Lock threads"),
    intro=_(
        "Locked threads are read-only for their owners: they can still read them, but not add "
        "messages, rename them or change their feedback."
    ),
    submit=_("Lock"),
    form_class=StatusForm,
    plan=_set_status(
        models.ThreadStatus.LOCKED.value,
        _("Locked (was %(status)s)."),
        _("Lock updated."),
    ),
    done=_counted(lambda n: ngettext("%(count)d thread locked.", "%(count)d threads locked.", n)),
    unchanged=_counted(
        lambda n: ngettext(
            "%(count)d thread was already locked, with these texts: unchanged.",
            "%(count)d threads were already locked, with these texts: unchanged.",
            n,
        )
    ),
)
CLOSE = Step(
    action="close_threads",
    title=_("Close threads"),
    intro=_(
        "Closed threads take no new messages; their owners can still read them, rename them "
        "and rate the answers."
    ),
    submit=_("Close"),
    form_class=StatusForm,
    plan=_set_status(
        models.ThreadStatus.CLOSED.value,
        _("Closed (was %(status)s)."),
        _("Close updated."),
    ),
    done=_counted(lambda n: ngettext("%(count)d thread closed.", "%(count)d threads closed.", n)),
    unchanged=_counted(
        lambda n: ngettext(
            "%(count)d thread was already closed, with these texts: unchanged.",
            "%(count)d threads were already closed, with these texts: unchanged.",
            n,
        )
    ),
)
REOPEN = Step(
    action="reopen_threads",
    title=_("Reopen threads"),
    intro=_(
        "Reopened threads take new messages again. Their message to the user is removed (each "
        "thread's history keeps it); their internal note stays unless you enter a new one."
    ),
    submit=_("Reopen"),
    form_class=ReopenForm,
    plan=_reopen,
    done=_counted(
        lambda n: ngettext("%(count)d thread reopened.", "%(count)d threads reopened.", n)
    ),
    unchanged=_counted(
        lambda n: ngettext(
            "%(count)d thread was neither locked nor closed: unchanged.",
            "%(count)d threads were neither locked nor closed: unchanged.",
            n,
        )
    ),
)
HOLD = Step(
    action="hold_threads",
    title=_("Put threads on legal hold"),
    intro=_(
        "Owners cannot delete or rename a thread on legal hold, nor retry its messages: their "
        "delete only hides it from them, and staff keep seeing it, marked deleted by owner. "
        "Nothing else changes for the owner; the hold is not shown to them."
    ),
    submit=_("Put on legal hold"),
    form_class=HoldForm,
    plan=_hold,
    done=_counted(
        lambda n: ngettext(
            "%(count)d thread put on legal hold.", "%(count)d threads put on legal hold.", n
        )
    ),
    unchanged=_counted(
        lambda n: ngettext(
            "%(count)d thread was already on legal hold: unchanged.",
            "%(count)d threads were already on legal hold: unchanged.",
            n,
        )
    ),
)
RELEASE = Step(
    action="release_threads",
    title=_("Release legal hold"),
    intro=_(
        "Owners can rename and delete these threads again. A thread its owner deleted during "
        "the hold stays hidden from them: delete it to complete their request."
    ),
    submit=_("Release legal hold"),
    form_class=HoldForm,
    plan=_release,
    done=_counted(
        lambda n: ngettext(
            "%(count)d thread released from legal hold.",
            "%(count)d threads released from legal hold.",
            n,
        )
    ),
    unchanged=_counted(
        lambda n: ngettext(
            "%(count)d thread was not on legal hold: unchanged.",
            "%(count)d threads were not on legal hold: unchanged.",
            n,
        )
    ),
)


def _events(changes: dict[str, Any]) -> list[str]:
    """The notices one thread's moderation changes make. The internal note is staff's alone
    and changes nothing the owner sees: no notice."""
    events = []
    if {"status", "status_reason"} & changes.keys():
        events.append(notices.THREAD_STATUS)
    if "legal_hold" in changes:
        events.append(notices.THREAD_HOLD)  # staff only: the owner is not told
    return events


def _batches(ids: list[str]) -> Iterator[list[str]]:
    it = iter(ids)
    while batch := list(islice(it, BATCH)):
        yield batch


class ThreadModerationAdmin(ThreadModelAdmin):
    """ThreadAdmin's base: the moderation actions, their permission, and what the change page
    lets staff edit (only the title, and not under legal hold)."""

    def has_moderate_permission(self, request: HttpRequest) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.moderate_{opts.model_name}")

    def get_readonly_fields(
        self, request: HttpRequest, obj: models.Thread | None = None
    ) -> _ListOrTuple[str]:
        fields = tuple(super().get_readonly_fields(request, obj))
        # The hold keeps the thread as it was: staff may not retitle it either (the history
        # would say "changed title" without the old one).
        if obj is not None and obj.legal_hold and "title" not in fields:
            fields += ("title",)
        return fields

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Per thread, so Django's "delete selected" lists a held one as not deletable (and
        # refuses the whole deletion) and its delete page answers 403: no purge while held.
        if isinstance(obj, models.Thread) and obj.legal_hold:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: models.Thread, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        # The change view runs in a transaction: the notice goes when it commits.
        if change and "title" in form.changed_data:
            notices.publish_on_commit(
                [notices.notice(notices.THREAD_TITLE, obj.pk)], using=obj._state.db
            )

    def delete_model(self, request: HttpRequest, obj: models.Thread) -> None:
        thread_id = obj.pk
        super().delete_model(request, obj)
        notices.publish_on_commit(
            [notices.notice(notices.THREAD_DELETED, thread_id)], using=obj._state.db
        )

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[models.Thread]) -> None:
        thread_ids = list(queryset.values_list("pk", flat=True)) if live_enabled() else []
        super().delete_queryset(request, queryset)
        notices.publish_on_commit(
            (notices.notice(notices.THREAD_DELETED, thread_id) for thread_id in thread_ids),
            using=queryset.db,
        )

    @admin.display(description=_("deleted by owner"))
    def deleted_by_owner(self, obj: models.Thread) -> str:
        if obj.deleted_by_owner_at is None:
            return gettext("No")
        date = formats.date_format(timezone.localtime(obj.deleted_by_owner_at), "DATETIME_FORMAT")
        if obj.legal_hold:
            message = gettext("Deleted by owner on %(date)s: hidden from them, kept for the hold.")
        else:
            message = gettext(
                "Deleted by owner on %(date)s, during a legal hold since released: hidden from "
                "them; delete it to complete their request."
            )
        return message % {"date": date}

    # -- actions ---------------------------------------------------------------------------------

    @admin.action(
        description=_("Lock selected threads (read-only for their owner)"),
        permissions=("moderate",),
    )
    def lock_threads(
        self, request: HttpRequest, queryset: QuerySet[models.Thread]
    ) -> TemplateResponse | None:
        return self._moderate(request, queryset, LOCK)

    @admin.action(description=_("Close selected threads"), permissions=("moderate",))
    def close_threads(
        self, request: HttpRequest, queryset: QuerySet[models.Thread]
    ) -> TemplateResponse | None:
        return self._moderate(request, queryset, CLOSE)

    @admin.action(description=_("Reopen selected threads"), permissions=("moderate",))
    def reopen_threads(
        self, request: HttpRequest, queryset: QuerySet[models.Thread]
    ) -> TemplateResponse | None:
        return self._moderate(request, queryset, REOPEN)

    @admin.action(description=_("Put selected threads on legal hold"), permissions=("moderate",))
    def hold_threads(
        self, request: HttpRequest, queryset: QuerySet[models.Thread]
    ) -> TemplateResponse | None:
        return self._moderate(request, queryset, HOLD)

    @admin.action(
        description=_("Release selected threads from legal hold"), permissions=("moderate",)
    )
    def release_threads(
        self, request: HttpRequest, queryset: QuerySet[models.Thread]
    ) -> TemplateResponse | None:
        return self._moderate(request, queryset, RELEASE)

    def _moderate(
        self, request: HttpRequest, queryset: QuerySet[models.Thread], step: Step
    ) -> TemplateResponse | None:
        """The confirmation page, or (its form posted and valid) the action done: None makes
        the changelist redirect to itself and show the messages."""
        # The changelist only runs offered actions; this guards any other way in.
        if not self.has_moderate_permission(request):
            raise PermissionDenied
        # The changelist's queryset may be annotated and grouped; the action works on plain rows.
        threads = models.Thread.objects.filter(pk__in=queryset.order_by().values("pk"))
        confirmed = request.POST.get("post") == "yes"
        form = step.form_class(request.POST if confirmed else None, prefix=_FORM_PREFIX)
        if confirmed and form.is_valid():
            changed, unchanged = self._apply(request, threads, step, form.cleaned_data)
            if changed:
                self.message_user(request, step.done(changed), messages.SUCCESS)
            if unchanged:
                self.message_user(request, step.unchanged(unchanged), messages.WARNING)
            return None
        return self._confirmation(request, threads, step, form)

    def _apply(
        self,
        request: HttpRequest,
        threads: QuerySet[models.Thread],
        step: Step,
        data: dict[str, str],
    ) -> tuple[int, int]:
        """Change the threads the step changes, one history entry each; (changed, unchanged).

        A constant number of queries whatever the number of threads (per BATCH): one read,
        one UPDATE per distinct change (at most a few), one INSERT of the history entries.
        The rows are locked while read so that each entry names the values it replaces.
        """
        user_id = request.user.pk
        if user_id is None:  # unreachable: the admin only lets signed-in staff in
            raise PermissionDenied
        content_type = ContentType.objects.get_for_model(models.Thread, for_concrete_model=False)
        with transaction.atomic(using=threads.db):
            rows = list(threads.select_for_update().only(*_FIELDS).order_by("pk"))
            groups: dict[tuple[tuple[str, Any], ...], list[str]] = {}
            entries: list[LogEntry] = []
            for thread in rows:
                planned = step.plan(thread, data)
                if planned is None:
                    continue
                changes, message = planned
                groups.setdefault(tuple(sorted(changes.items())), []).append(thread.pk)
                entries.append(
                    LogEntry(
                        user_id=user_id,
                        content_type_id=content_type.pk,
                        object_id=str(thread.pk),
                        object_repr=str(thread)[:200],
                        action_flag=CHANGE,
                        change_message=message,
                    )
                )
            for changes_key, ids in groups.items():
                for batch in _batches(ids):
                    models.Thread.objects.filter(pk__in=batch).update(**dict(changes_key))
            LogEntry.objects.bulk_create(entries, batch_size=BATCH)
            if step in (LOCK, CLOSE):
                # The thread takes no new message: nor does the answer streaming now go on.
                # Its worker is told on commit (django_chatkit.stops), the run names the user.
                changed_ids = [str(pk) for ids in groups.values() for pk in ids]
                for batch in _batches(changed_ids):
                    stops.request_stop(batch, user_id, using=threads.db)
            # queryset.update() sends no signal: the notices are published here, on commit.
            notices.publish_on_commit(
                (
                    notices.notice(event, thread_id)
                    for changes_key, ids in groups.items()
                    for event in _events(dict(changes_key))
                    for thread_id in ids
                ),
                using=threads.db,
            )
        return len(entries), len(rows) - len(entries)

    def _confirmation(
        self,
        request: HttpRequest,
        threads: QuerySet[models.Thread],
        step: Step,
        form: forms.Form,
    ) -> TemplateResponse:
        # Counted even when all are listed: the same queries for 10 threads as for 200.
        total = threads.count()
        # In the changelist's order, so the threads read as they were ticked.
        ordering = (*self.get_ordering(request), "-pk")
        listed = list(threads.select_related("user").order_by(*ordering)[:LISTED_ON_CONFIRMATION])
        opts = self.opts
        context = {
            **self.admin_site.each_context(request),
            "title": step.title,
            "intro": step.intro,
            "submit": step.submit,
            "action": step.action,
            "form": form,
            "opts": opts,
            "threads": [
                {
                    "thread": thread,
                    "owner": owner_label(thread),
                    "url": reverse(
                        f"admin:{opts.app_label}_{opts.model_name}_change",
                        args=[thread.pk],
                        current_app=self.admin_site.name,
                    ),
                }
                for thread in listed
            ],
            "more": total - len(listed),
            "total": total,
            # Posted back as they came: the second POST selects the same threads (the page
            # posts to the changelist's own URL, so a "select all" keeps its filters).
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "changelist_url": reverse(
                f"admin:{opts.app_label}_{opts.model_name}_changelist",
                current_app=self.admin_site.name,
            ),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request,
            f"admin/{opts.app_label}/{opts.model_name}/moderation_confirmation.html",
            context,
        )
