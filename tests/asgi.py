import os

from django.core.asgi import get_asgi_application

from django_chatkit.asgi import BodyLimitMiddleware

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
application = BodyLimitMiddleware(get_asgi_application())

# As the Quickstart's asgi.py does: the first chat then does not wait for the SDK imports
# (seconds on a busy machine), and a server that listens is ready to answer.
from django_chatkit.loading import warm_up  # noqa: E402

warm_up()

# Tests wait on these lines to know the server has finished with a request (tests/request_log.py).
from tests import request_log  # noqa: E402

request_log.install()
