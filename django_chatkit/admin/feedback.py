"""The feedback admin: a review queue of the owners' votes on answers.

Each row shows what was rated (an excerpt of the item's text), the user message it answered,
the model that wrote it and a link to that place in the transcript, all computed in the
changelist's one query (correlated subqueries), so the page costs the same for any number of
rows. Votes are the user's: nothing here edits or deletes them. A moderator with the
``change_feedback`` permission marks votes reviewed, with a note for other staff.
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, Left
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from django_chatkit import models
from django_chatkit.admin.common import (
    FeedbackModelAdmin,
    ReadOnlyAdminMixin,
    first_when,
    owner_label,
)
from django_chatkit.admin.counting import BoundedChangeList, EstimatedCountPaginator
from django_chatkit.admin.filters import RecentModelFilter
from django_chatkit.admin.links import QUEUES_CSS, thread_link
from django_chatkit.admin.transcript import transcript_url

# How much of the rated item and of the user's message a row shows.
EXCERPT_CHARS = 160
NOTE_MAX_CHARS = 2000
CONFIRM_FIELD = "confirm_review"


def _transcript_link(thread_id: str, item_id: str) -> str:
    """The transcript page showing the rated item, scrolled to it."""
    return transcript_url(thread_id, item_id)


def _excerpt(text: str | None) -> str | None:
    # The database sends EXCERPT_CHARS + 1 characters: one more says the text goes on.
    if text is None:
        return None
    if len(text) > EXCERPT_CHARS:
        return text[:EXCERPT_CHARS].rstrip() + "…"
    return text


def with_review_columns(queryset: QuerySet[models.Feedback]) -> QuerySet[models.Feedback]:
    """Annotate each vote with its rated item's time and text, the user message before it and
    the answer's model: correlated subqueries, each an index lookup (chatkit_item_unique_id,
    chatkit_item_page, chatkit_run_thread), none loading more than an excerpt."""
    rated = models.ThreadItem.objects.filter(
        thread=OuterRef("thread"), item_id=OuterRef("item_id")
    ).order_by()
    queryset = queryset.annotate(
        rated_at=Subquery(rated.values("created_at")[:1]),
        rated_text=Subquery(rated.values(head=Left("text", EXCERPT_CHARS + 1))[:1]),
    )
    asked = models.ThreadItem.objects.filter(
        thread=OuterRef("thread"), type="user_message", created_at__lt=OuterRef("rated_at")
    ).order_by("-created_at", "-id")
    queryset = queryset.annotate(
        asked_at=Subquery(asked.values("created_at")[:1]),
        asked_text=Subquery(asked.values(head=Left("text", EXCERPT_CHARS + 1))[:1]),
    )
    # The answer run that was streaming when the item was made, within its turn (started
    # after the user's message: the index range stays the turn's few runs, and a run a crashed
    # worker left "running" long ago claims nothing); failing that (an item saved after its
    # run was recorded as finished), the last answer run started before it.
    answers = models.Run.objects.filter(
        thread=OuterRef("thread"),
        kind=models.RunKind.ANSWER,
        started_at__lte=OuterRef("rated_at"),
    ).order_by("-started_at", "-id")
    covering = answers.filter(
        Q(finished_at__isnull=True) | Q(finished_at__gte=OuterRef("rated_at")),
        started_at__gte=OuterRef("asked_at"),
    )
    return queryset.annotate(
        answer_model=Coalesce(
            Subquery(covering.values("model")[:1]), Subquery(answers.values("model")[:1])
        ),
    )


class ReviewedFilter(admin.SimpleListFilter):
    title = _("reviewed")
    parameter_name = "reviewed"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[models.Feedback]
    ) -> QuerySet[models.Feedback]:
        if self.value() == "yes":
            return queryset.filter(reviewed_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(reviewed_at__isnull=True)
        return queryset


class AnswerModelFilter(RecentModelFilter):
    """The model of the rated answer (the annotation ``answer_model``)."""

    run_kind = models.RunKind.ANSWER

    def of_model(self, queryset: QuerySet[Any], name: str) -> QuerySet[Any]:
        # A keyword the annotation adds (with_review_columns), unknown to the model's fields.
        return queryset.filter(**{"answer_model": name})


class ReviewForm(forms.Form):
    note = forms.CharField(
        label=_("Review note"),
        required=False,
        max_length=NOTE_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        help_text=_("For staff only: never shown to the user who voted."),
    )


@admin.register(models.Feedback)
class FeedbackAdmin(ReadOnlyAdminMixin, FeedbackModelAdmin):
    list_display = (
        "kind_badge",
        "rated_excerpt",
        "asked_excerpt",
        "answer_model_name",
        "owner",
        "thread_page",
        "transcript",
        "updated_at",
        "review_state",
    )
    list_display_links = ("kind_badge",)
    list_filter = ("kind", AnswerModelFilter, ReviewedFilter, "updated_at")
    search_fields = ("=thread__id", "=item_id", "thread__user__username")
    list_select_related = ("thread", "thread__user", "reviewed_by")
    # The total of all votes is a second COUNT(*) the queue does not need.
    show_full_result_count = False
    # Counted as the threads list is (admin/counting.py): estimated unfiltered, capped filtered.
    paginator = EstimatedCountPaginator

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[BoundedChangeList]:
        return BoundedChangeList

    # The queue: votes nobody has reviewed yet come first; among them the negative ones, which
    # point at answers that went wrong; and the newest first, since a recent fault is the one
    # still happening. Reviewed votes follow in the same order, as a record.
    # Served by the index chatkit_feedback_review_order (migration 0008).
    ordering = (
        first_when(Q(reviewed_at__isnull=True)),
        first_when(Q(kind=models.FeedbackKind.NEGATIVE)),
        "-updated_at",
        "-id",
    )
    fields = (
        "kind",
        "thread_page",
        "item_id",
        "transcript",
        "rated_excerpt",
        "asked_excerpt",
        "answer_model_name",
        "owner",
        "created_at",
        "updated_at",
        "reviewed_at",
        "reviewed_by",
        "review_note",
    )
    readonly_fields = fields
    actions = ("mark_reviewed",)

    class Media:
        css = {"all": (QUEUES_CSS,)}

    def get_queryset(self, request: HttpRequest) -> QuerySet[models.Feedback]:
        return with_review_columns(super().get_queryset(request))

    @admin.display(description=_("vote"), ordering="kind")
    def kind_badge(self, obj: models.Feedback) -> SafeString:
        label = models.FeedbackKind(obj.kind).label if obj.kind in models.FeedbackKind else obj.kind
        mark = "▲" if obj.kind == models.FeedbackKind.POSITIVE else "▼"
        return format_html(
            '<span class="chatkit-badge chatkit-badge-{}">{} {}</span>', obj.kind, mark, label
        )

    @admin.display(description=_("rated text"))
    def rated_excerpt(self, obj: models.Feedback) -> SafeString | str:
        text = _excerpt(getattr(obj, "rated_text", None))
        if text is None:  # the item is gone (the thread's items were deleted)
            return format_html('<span class="chatkit-muted">{}</span>', gettext("(item deleted)"))
        return format_html('<span class="chatkit-excerpt">{}</span>', text)

    @admin.display(description=_("user message before it"))
    def asked_excerpt(self, obj: models.Feedback) -> SafeString | str:
        text = _excerpt(getattr(obj, "asked_text", None))
        return "—" if text is None else format_html('<span class="chatkit-excerpt">{}</span>', text)

    @admin.display(description=_("model"))
    def answer_model_name(self, obj: models.Feedback) -> str:
        return getattr(obj, "answer_model", None) or "—"

    @admin.display(description=_("owner"))
    def owner(self, obj: models.Feedback) -> str:
        return owner_label(obj.thread)

    @admin.display(description=_("thread"))
    def thread_page(self, obj: models.Feedback) -> SafeString | str:
        return thread_link(obj.thread)

    @admin.display(description=_("in the transcript"))
    def transcript(self, obj: models.Feedback) -> SafeString:
        return format_html(
            '<a href="{}">{}</a>', _transcript_link(obj.thread_id, obj.item_id), gettext("Show")
        )

    @admin.display(description=_("reviewed"), ordering="reviewed_at")
    def review_state(self, obj: models.Feedback) -> SafeString | str:
        if obj.reviewed_at is None:
            return format_html('<span class="chatkit-muted">{}</span>', gettext("Not reviewed"))
        reviewer = str(obj.reviewed_by) if obj.reviewed_by is not None else "—"
        when = date_format(timezone.localtime(obj.reviewed_at), "SHORT_DATETIME_FORMAT")
        return format_html("{} · {}", when, reviewer)

    # -- permissions: the votes are the user's (ReadOnlyAdminMixin); reviewing needs
    # change_feedback --------------------------------------------------------------------------

    def has_review_permission(self, request: HttpRequest) -> bool:
        opts = self.opts
        codename = get_permission_codename("change", opts)
        return bool(request.user.has_perm(f"{opts.app_label}.{codename}"))

    # -- the "mark reviewed" action, with its confirmation page --------------------------------

    @admin.action(description=_("Mark selected votes reviewed…"), permissions=["review"])
    def mark_reviewed(
        self, request: HttpRequest, queryset: QuerySet[models.Feedback]
    ) -> TemplateResponse | None:
        # The action form only offers permitted actions, so a forged POST is refused before
        # this runs; checked again here so that no other caller skips it.
        if not self.has_review_permission(request):
            raise PermissionDenied
        confirmed = request.POST.get(CONFIRM_FIELD) == "yes"
        form = ReviewForm(request.POST if confirmed else None)
        if confirmed and form.is_valid():
            self._mark_reviewed(request, queryset, form.cleaned_data["note"])
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Mark votes reviewed"),
            "opts": self.opts,
            "form": form,
            "queryset": queryset,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "confirm_field": CONFIRM_FIELD,
            "media": self.media + form.media,
        }
        return TemplateResponse(
            request, "admin/django_chatkit/feedback/mark_reviewed.html", context
        )

    def _mark_reviewed(
        self, request: HttpRequest, queryset: QuerySet[models.Feedback], note: str
    ) -> None:
        selected = list(queryset.order_by().values_list("pk", flat=True))
        with transaction.atomic():
            # Locked, then re-checked: of two moderators reviewing at once, each vote is marked
            # (and logged) by one; an earlier reviewer's note is never overwritten.
            pending = list(
                models.Feedback.objects.filter(pk__in=selected, reviewed_at__isnull=True)
                .select_for_update()
                .order_by("pk")
            )
            count = models.Feedback.objects.filter(pk__in=[vote.pk for vote in pending]).update(
                reviewed_at=timezone.now(), reviewed_by=request.user, review_note=note
            )
            change = gettext("Marked reviewed.")
            if note:
                change += " " + gettext("Note: %(note)s") % {"note": note}
            LogEntry.objects.log_actions(
                user_id=cast(int, request.user.pk),
                queryset=pending,
                action_flag=CHANGE,
                change_message=change,
            )
        skipped = len(selected) - count
        message = ngettext(
            "%(count)d vote marked reviewed.", "%(count)d votes marked reviewed.", count
        ) % {"count": count}
        if skipped > 0:
            message += " " + ngettext(
                "%(count)d was already reviewed and was left as it was.",
                "%(count)d were already reviewed and were left as they were.",
                skipped,
            ) % {"count": skipped}
        self.message_user(request, message, messages.SUCCESS)
