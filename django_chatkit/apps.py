from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DjangoChatKitConfig(AppConfig):
    name = "django_chatkit"
    label = "django_chatkit"
    verbose_name = _("ChatKit")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_chatkit import checks, loading  # noqa: F401  (registers checks and receivers)
        from django_chatkit.attachments import lifecycle  # noqa: F401  (files follow their rows)
        from django_chatkit.live import layer  # noqa: F401  (forgets the layer check on override)
