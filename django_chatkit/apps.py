from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DjangoChatKitConfig(AppConfig):
    name = "django_chatkit"
    label = "django_chatkit"
    verbose_name = _("ChatKit")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings
        from django.db.models.signals import post_delete, pre_delete

        from django_chatkit import checks, loading  # noqa: F401  (registers checks and receivers)
        from django_chatkit.attachments import lifecycle  # noqa: F401  (files follow their rows)
        from django_chatkit.erasure import journal_files_of_user, keep_held_threads
        from django_chatkit.hosted import signout as hosted_signout  # noqa: F401  (see below)
        from django_chatkit.hosted.deleting import journal_hosted_thread
        from django_chatkit.live import layer  # noqa: F401  (forgets the layer check on override)
        from django_chatkit.live import signout as live_signout  # noqa: F401  (see below)

        # Signing out closes that browser session's sockets (live_signout) and cancels the
        # hosted sessions it minted (hosted_signout): receivers of user_logged_out.

        # A user's deletion keeps their threads on legal hold (django_chatkit.erasure); the
        # receivers run in this order, inside the deletion's transaction.
        pre_delete.connect(
            keep_held_threads,
            sender=settings.AUTH_USER_MODEL,
            dispatch_uid="django_chatkit.keep_held_threads",
        )
        pre_delete.connect(
            journal_files_of_user,
            sender=settings.AUTH_USER_MODEL,
            dispatch_uid="django_chatkit.journal_files_of_user",
        )
        # Deleting an imported hosted thread, however it happens, owes its deletion at OpenAI
        # (django_chatkit.hosted.deleting): journalled in the deleting transaction.
        post_delete.connect(
            journal_hosted_thread,
            sender="django_chatkit.Thread",
            dispatch_uid="django_chatkit.journal_hosted_thread",
        )
