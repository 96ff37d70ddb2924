"""tests.asgi with the live websockets routed, as docs/live.md's asgi.py does (browser tests
of live updates; the server's CHANNEL_LAYERS come from CHATKIT_TEST_CHANNEL_LAYERS)."""

from tests import asgi  # first: sets Django up

http_application = asgi.application

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from django_chatkit.routing import websocket_urlpatterns  # noqa: E402  (needs the app registry)

application = ProtocolTypeRouter(
    {
        "http": http_application,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
