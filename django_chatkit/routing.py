"""``websocket_urlpatterns``: the live websockets (a thread's, and staff's), for the site's
``asgi.py`` (docs/live.md)::

    from channels.auth import AuthMiddlewareStack
    from channels.routing import ProtocolTypeRouter, URLRouter
    from channels.security.websocket import AllowedHostsOriginValidator

    from django_chatkit.routing import websocket_urlpatterns

    application = ProtocolTypeRouter({
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    })

Importing this module is what tells ``{% chatkit %}`` that the process serves the websocket
(``django_chatkit.live.routes``): the widget then subscribes to the thread it shows. Needs
Channels (``pip install "django-openai-chatkit[live]"``).
"""

from __future__ import annotations

from django.urls import path

from django_chatkit.live import routes
from django_chatkit.live.consumers import StaffNoticesConsumer, ThreadNoticesConsumer

websocket_urlpatterns = [
    path(
        routes.THREAD_PATH.removeprefix("/") + "<str:thread_id>/",
        ThreadNoticesConsumer.as_asgi(),
        name="chatkit_live_thread",
    ),
    path(
        routes.STAFF_PATH.removeprefix("/"),
        StaffNoticesConsumer.as_asgi(),
        name="chatkit_live_staff",
    ),
]

routes.mark_served()
