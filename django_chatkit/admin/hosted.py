"""Hosted users in the admin, and importing their hosted conversations for review.

The action imports the selected users' threads from OpenAI synchronously, bounded by
``HOSTED_IMPORT_ADMIN_SECONDS`` (a request must end): what it did not reach is left for the next
import, and staff are told to run ``manage.py chatkit_import_hosted`` for everyone. It needs the
permission ``django_chatkit.import_hosted`` ("Can import hosted conversations from OpenAI").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from django_chatkit import models
from django_chatkit.admin.common import ReadOnlyAdminMixin, anonymous_owner_label
from django_chatkit.conf import chatkit_settings
from django_chatkit.hosted import deleting

if TYPE_CHECKING:
    HostedUserModelAdmin = admin.ModelAdmin[models.HostedUser]
else:
    HostedUserModelAdmin = admin.ModelAdmin

IMPORT_PERMISSION = "django_chatkit.import_hosted"


def may_import(request: HttpRequest) -> bool:
    return bool(request.user.has_perm(IMPORT_PERMISSION))


@admin.register(models.HostedUser)
class HostedUserAdmin(ReadOnlyAdminMixin, HostedUserModelAdmin):
    list_display = ("upstream_user", "owner", "last_session_at", "last_imported_at")
    list_select_related = ("user",)
    ordering = ("-last_session_at", "-pk")
    search_fields = ("upstream_user",)
    search_help_text = _("Upstream user identifier (exact).")
    actions = ("import_hosted_conversations",)
    fields = ("upstream_user", "owner", "created_at", "last_session_at", "last_imported_at")
    readonly_fields = fields

    @admin.display(description=_("owner"))
    def owner(self, obj: models.HostedUser) -> str:
        if obj.user_id is not None:
            return str(obj.user)
        return anonymous_owner_label(obj.anonymous_key)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[models.HostedUser], search_term: str
    ) -> tuple[QuerySet[models.HostedUser], bool]:
        term = search_term.strip()
        return (queryset.filter(upstream_user=term) if term else queryset), False

    # Rows are written by the session endpoint only (ReadOnlyAdminMixin): staff read them.
    def has_import_hosted_permission(self, request: HttpRequest) -> bool:
        return may_import(request)

    @admin.action(
        description=_("Import hosted conversations of the selected users"),
        permissions=("import_hosted",),
    )
    def import_hosted_conversations(
        self, request: HttpRequest, queryset: QuerySet[models.HostedUser]
    ) -> None:
        # Django offers the action only with the permission and ignores a forged POST of it;
        # checked again here all the same.
        if not may_import(request):
            raise PermissionDenied
        # Imported here: the SDK's types (item conversion) load only when an import runs, not
        # with the admin (manage.py commands start without the SDKs).
        from django_chatkit.hosted.importing import import_hosted

        report = import_hosted(
            list(queryset.order_by("pk")), seconds=chatkit_settings.HOSTED_IMPORT_ADMIN_SECONDS
        )
        self.message_user(
            request,
            gettext(
                "%(users)s user(s): %(created)s new and %(updated)s changed thread(s) imported "
                "(%(items)s item(s)), %(unchanged)s unchanged, %(deleted)s marked deleted "
                "upstream."
            )
            % {
                "users": report.users,
                "created": report.threads_created,
                "updated": report.threads_updated,
                "items": report.items,
                "unchanged": report.threads_unchanged,
                "deleted": report.marked_deleted,
            },
            messages.SUCCESS,
        )
        for reason in report.skipped:
            self.message_user(
                request, gettext("Skipped %(reason)s") % {"reason": reason}, messages.WARNING
            )
        if report.stopped:
            self.message_user(
                request,
                gettext(
                    "The import stopped before the end: %(why)s To import many users, or all "
                    "of them, run: manage.py chatkit_import_hosted --all"
                )
                % {"why": report.stopped},
                messages.WARNING,
            )


def settle_after_admin_delete(request: HttpRequest, thread_ids: list[str]) -> None:
    """After the admin deleted threads: delete the hosted ones at OpenAI now (bounded), and say
    what is still owed (retried by the next chatkit_purge or chatkit_import_hosted run)."""
    from django_chatkit.hosted.upstream import Upstream

    if not models.HostedDeletion.objects.filter(thread_id__in=thread_ids).exists():
        return
    try:
        upstream = Upstream(max_attempts=1)
    except Exception:  # no API key: everything stays owed
        upstream = None
    settled = deleting.settle(upstream, thread_ids) if upstream else None
    if settled is None or settled.pending:
        messages.warning(
            request,
            gettext(
                "Some hosted threads could not be deleted at OpenAI yet; their deletion is "
                "retried by the next chatkit_purge or chatkit_import_hosted run."
            ),
        )
    elif settled.deleted or settled.already_gone:
        messages.info(
            request,
            gettext("%(count)s hosted thread(s) deleted at OpenAI too.")
            % {"count": settled.deleted + settled.already_gone},
        )


if TYPE_CHECKING:
    HostedDeletionModelAdmin = admin.ModelAdmin[models.HostedDeletion]
else:
    HostedDeletionModelAdmin = admin.ModelAdmin


@admin.register(models.HostedDeletion)
class HostedDeletionAdmin(ReadOnlyAdminMixin, HostedDeletionModelAdmin):
    """Hosted threads deleted here whose deletion at OpenAI is still owed: read-only, settled
    by the next chatkit_purge or chatkit_import_hosted run (django_chatkit.hosted.deleting)."""

    list_display = ("thread_id", "requested_at", "attempts", "last_attempt_at", "last_error")
    fields = list_display
    readonly_fields = list_display
    ordering = ("requested_at", "pk")
