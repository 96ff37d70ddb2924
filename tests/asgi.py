import os

from django.core.asgi import get_asgi_application

from django_chatkit.asgi import BodyLimitMiddleware

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
application = BodyLimitMiddleware(get_asgi_application())
