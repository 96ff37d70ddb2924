"""The bootstrap module (static/django_chatkit/chatkit-bootstrap.js), served by this app's URLconf.

``{% chatkit %}`` loads it from ``<chatkit URLs>/bootstrap.<digest>.js`` rather than from
``{% static %}``: a site served by bare daphne or uvicorn (no runserver, no collectstatic, no
WhiteNoise) answers its static URLs with 404, and the widget would never start. Served from the
URLconf that already carries the endpoint, the module works wherever the endpoint does, with no
extra step.

The URL names the content's hash, so browsers may keep it for a year: a new release is a new
URL. A page rendered before a deploy still asks for the old digest; it gets the current content
(the only one there is) with ``Cache-Control: no-cache``, so that a stale page still gets a
working widget and nothing caches the new content under the old name for good.

The file stays in static/ too: sites may import ``startChatKit`` from there. Two URLs of the
module are two module instances; the module marks the elements it started, so neither starts a
widget twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import reverse
from django.utils.http import parse_etags
from django.views.decorators.csrf import csrf_exempt

PATH = Path(__file__).resolve().parent / "static" / "django_chatkit" / "chatkit-bootstrap.js"
DIGEST_LENGTH = 12
CONTENT_TYPE = "text/javascript; charset=utf-8"
IMMUTABLE = "public, max-age=31536000, immutable"
# A stale digest: the browser revalidates every time (the ETag makes that a 304).
REVALIDATE = "no-cache"


@dataclass(frozen=True)
class BootstrapAsset:
    content: bytes
    digest: str

    @property
    def etag(self) -> str:
        return f'"{self.digest}"'


@cache
def bootstrap_asset() -> BootstrapAsset:
    """The module's bytes and the short hash naming them, read once per process (a deploy
    restarts the process, which reads the new file)."""
    content = PATH.read_bytes()
    return BootstrapAsset(content, hashlib.sha256(content).hexdigest()[:DIGEST_LENGTH])


def bootstrap_url() -> str:
    """The URL ``{% chatkit %}`` renders for the module, naming its current hash."""
    return reverse("chatkit:bootstrap", args=[bootstrap_asset().digest])


def _not_modified(request: HttpRequest, asset: BootstrapAsset) -> bool:
    header = request.headers.get("If-None-Match")
    if not header:
        return False
    # Weak comparison (RFC 9110 13.1.2): a proxy may have weakened the tag by compressing.
    tags = {tag.removeprefix("W/") for tag in parse_etags(header)}
    return "*" in tags or asset.etag in tags


# No login, no session, no database: middleware reads those lazily, and this view reads none of
# them, so serving the module costs no query and sets no cookie. Exempt from CSRF so that a
# POST is told 405 (the method is wrong), not 403, and from LoginRequiredMiddleware: the page
# that loads it may be public (ALLOW_ANONYMOUS), and a redirect would break the widget.
@login_not_required
@csrf_exempt
async def bootstrap_view(request: HttpRequest, digest: str) -> HttpResponseBase:
    """The bootstrap module: immutable under its current digest, revalidated under another."""
    if request.method not in ("GET", "HEAD"):
        # Imported here: errors imports the ChatKit SDK, which {% chatkit %} (importing this
        # module for bootstrap_url) should not load into every process that renders a page.
        from django_chatkit.errors import error_response

        refused = error_response(405, "method_not_allowed", "Use GET.")
        refused["Allow"] = "GET, HEAD"
        return refused
    asset = bootstrap_asset()
    current = digest == asset.digest
    if _not_modified(request, asset):
        response = HttpResponse(status=304)
        del response["Content-Type"]  # a 304 has no body to describe
    else:
        # HEAD gets the body too: the server leaves it out and keeps the Content-Length right.
        response = HttpResponse(asset.content, content_type=CONTENT_TYPE)
    response["ETag"] = asset.etag
    response["Cache-Control"] = IMMUTABLE if current else REVALIDATE
    response["X-Content-Type-Options"] = "nosniff"
    return response
