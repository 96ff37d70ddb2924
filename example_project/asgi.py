"""ASGI entry point: ``python -m django_chatkit.daphne example_project.asgi:application`` (daphne,
refusing oversized bodies as they arrive), or ``uvicorn example_project.asgi:application``.
HTTP, and the live websockets when Channels is installed (settings.LIVE, docs/live.md)."""

import os

from django.conf import settings
from django.core.asgi import get_asgi_application

from django_chatkit.asgi import BodyLimitMiddleware

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

django_application = get_asgi_application()

from django_chatkit.loading import warm_up  # noqa: E402  (needs settings)

warm_up()  # the SDKs and the agent now, not on the first chat (docs/deployment.md)

from example_project.offline import offline, start_offline_model  # noqa: E402  (needs settings)

if offline():
    print(f"No OPENAI_API_KEY: answering with the offline demo model at {start_offline_model()}")
elif not os.environ.get("OPENAI_API_KEY"):
    # A server named by OPENAI_BASE_URL alone (a local model server, say) needs no real key.
    os.environ["OPENAI_API_KEY"] = "unused"

if settings.DEBUG:
    # Serve the admin's CSS and JS when running daphne directly, as runserver would.
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    django_application = ASGIStaticFilesHandler(django_application)

# Oversized bodies to the endpoint and upload URLs are refused as they arrive (docs/deployment.md).
http_application = BodyLimitMiddleware(django_application)

if getattr(settings, "LIVE", False):
    # Live updates (docs/live.md): the thread websockets, for the owner and for staff.
    from channels.auth import AuthMiddlewareStack
    from channels.routing import ProtocolTypeRouter, URLRouter
    from channels.security.websocket import AllowedHostsOriginValidator

    from django_chatkit.routing import websocket_urlpatterns

    application = ProtocolTypeRouter(
        {
            "http": http_application,
            "websocket": AllowedHostsOriginValidator(
                AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
            ),
        }
    )
else:
    application = http_application
