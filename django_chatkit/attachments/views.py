"""The upload view (two-phase uploads, token-authorised, CORS for the ChatKit iframe) and the
download view (owners and staff)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from chatkit.store import NotFoundError
from django.contrib.auth.decorators import login_not_required
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.utils.decorators import method_decorator
from django.utils.http import content_disposition_header
from django.utils.translation import gettext
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from django_chatkit.attachments import storage, uploads
from django_chatkit.attachments.options import limits
from django_chatkit.attachments.receiving import receive_upload, too_large
from django_chatkit.attachments.store import DjangoAttachmentStore
from django_chatkit.attachments.tokens import read_upload_token
from django_chatkit.body_limits import declared_length
from django_chatkit.conf import chatkit_settings
from django_chatkit.context import context_from_request
from django_chatkit.errors import RequestRejected, error_response
from django_chatkit.loading import get_attachment_store
from django_chatkit.unavailable import answer_503_when_database_down

# Room for the multipart envelope around a file of the largest accepted size.
MULTIPART_OVERHEAD = 64 * 1024
CORS_METHODS = "POST, PUT"
CORS_HEADERS = "Content-Type"
CORS_MAX_AGE = "600"


def upload_body_limit(max_bytes: int, content_type: str) -> int:
    """The largest body carrying a file of ``max_bytes``: multipart adds its envelope."""
    return max_bytes + (MULTIPART_OVERHEAD if content_type == "multipart/form-data" else 0)


def _origin_allowed(request: HttpRequest, origin: str) -> bool:
    same_origin = f"{request.scheme}://{request.get_host()}"
    return origin == same_origin or origin in chatkit_settings.UPLOAD_ALLOWED_ORIGINS


def _cors(request: HttpRequest) -> dict[str, str] | None:
    """CORS headers for this request (none when it has no Origin), or None when refused.

    The token in the URL is the credential: no cookies are invited (no Allow-Credentials).
    """
    origin = request.headers.get("Origin")
    if not origin:
        return {}
    if not _origin_allowed(request, origin):
        return None
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def _origin_refused() -> HttpResponse:
    return error_response(
        403,
        "origin_not_allowed",
        "Uploads from this origin are not allowed (UPLOAD_ALLOWED_ORIGINS).",
    )


def _json(attachment: Any) -> HttpResponse:
    body = attachment.model_dump_json(
        by_alias=True, exclude_none=True, context={"exclude_metadata": True}
    )
    return HttpResponse(body, content_type="application/json")


async def _done(response: HttpResponseBase) -> HttpResponseBase:
    return response


# Authorised by its own token or owner check: see ChatKitView on LoginRequiredMiddleware.
@method_decorator(login_not_required, name="dispatch")
@method_decorator(csrf_exempt, name="dispatch")  # authorised by the signed token, not cookies
class UploadView(View):
    """Receives the bytes of a pending attachment: POST (multipart ``file``) or PUT (raw body)."""

    http_method_names = ["post", "put", "options"]

    def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        response = error_response(405, "method_not_allowed", "Upload with POST or PUT.")
        response["Allow"] = "POST, PUT, OPTIONS"
        return _done(response)

    async def options(  # type: ignore[override]
        self, request: HttpRequest, attachment_id: str
    ) -> HttpResponseBase:
        cors = _cors(request)
        if cors is None:
            return _origin_refused()
        response = HttpResponse(status=204)
        response["Allow"] = "POST, PUT, OPTIONS"
        if cors:
            cors.update(
                {
                    "Access-Control-Allow-Methods": CORS_METHODS,
                    "Access-Control-Allow-Headers": CORS_HEADERS,
                    "Access-Control-Max-Age": CORS_MAX_AGE,
                }
            )
        for name, value in cors.items():
            response[name] = value
        return response

    async def post(self, request: HttpRequest, attachment_id: str) -> HttpResponseBase:
        cors = _cors(request)
        if cors is None:
            return _origin_refused()
        # Every answer carries the CORS headers, a 503 too: the iframe can then read it.
        response = await self._answer(request, attachment_id)
        for name, value in cors.items():
            response[name] = value
        return response

    put = post

    @answer_503_when_database_down
    async def _answer(self, request: HttpRequest, attachment_id: str) -> HttpResponseBase:
        try:
            return _json(await self._upload(request, attachment_id))
        except RequestRejected as exc:
            return error_response(exc.status, exc.code, exc.message)

    async def _upload(self, request: HttpRequest, attachment_id: str) -> Any:
        claim = read_upload_token(request.GET.get("token"))
        upload = await attachment_store().load_pending_upload(attachment_id, claim)
        current = limits()
        limit = upload_body_limit(current.max_bytes, request.content_type or "")
        if declared_length(request) > limit:
            raise too_large(current.max_bytes)
        received = await sync_to_async(receive_upload, thread_sensitive=False)(
            request, current.max_bytes
        )
        try:
            return await uploads.finish(upload, received, current)
        finally:
            received.close()


async def _chunks(handle: Any) -> AsyncIterator[bytes]:
    read = sync_to_async(handle.read, thread_sensitive=False)
    try:
        while chunk := await read(storage.READ_CHUNK):
            yield chunk
    finally:
        await sync_to_async(handle.close, thread_sensitive=False)()


def attachment_store() -> DjangoAttachmentStore:
    """The store these views find their rows through: the configured one when it is (or
    extends) the built-in store, else the built-in one, since these views serve the files it
    keeps whichever store a custom ``ATTACHMENT_STORE`` is."""
    configured = get_attachment_store()
    if isinstance(configured, DjangoAttachmentStore):
        return configured
    return DjangoAttachmentStore()


def _open(alias: str, name: str) -> tuple[Any, int]:
    store = storage.get_storage(alias)
    handle = store.open(name, "rb")
    return handle, int(store.size(name))


# Authorised by its own token or owner check: see ChatKitView on LoginRequiredMiddleware.
@method_decorator(login_not_required, name="dispatch")
class DownloadView(View):
    """An attachment's file, for its owner and for staff with ``view_attachment`` permission.

    Images are shown inline (they were decoded by Pillow on upload), everything else downloads.
    On S3 the answer is a redirect to a presigned URL valid for one minute.
    """

    http_method_names = ["get", "head"]

    def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        response = error_response(405, "method_not_allowed", "Use GET.")
        response["Allow"] = "GET, HEAD"
        return _done(response)

    @answer_503_when_database_down
    async def get(self, request: HttpRequest, attachment_id: str) -> HttpResponseBase:
        context = await context_from_request(
            request, allow_anonymous=chatkit_settings.ALLOW_ANONYMOUS
        )
        if context is None:
            return error_response(
                401, "not_authenticated", gettext("Sign in to download attachments.")
            )
        try:
            found = await attachment_store().load_attachment_for_download(attachment_id, context)
        except NotFoundError:
            return error_response(404, "not_found", f"Attachment {attachment_id} not found")

        inline = found.is_image and not request.GET.get("download")
        disposition = content_disposition_header(not inline, found.name) or "attachment"
        content_type = found.mime_type
        if content_type.startswith("text/"):
            content_type += "; charset=utf-8"
        alias, name = found.storage_alias, found.storage_name
        if storage.is_s3(storage.get_storage(alias)):
            url = await sync_to_async(storage.presigned_get, thread_sensitive=False)(
                alias, name, content_type=content_type, disposition=disposition
            )
            redirect = HttpResponseRedirect(url)
            redirect["Cache-Control"] = "private, no-store"
            return redirect
        try:
            handle, size = await sync_to_async(_open, thread_sensitive=False)(alias, name)
        except FileNotFoundError:
            return error_response(404, "not_found", f"The file of {attachment_id} is missing.")
        response: HttpResponseBase
        if request.method == "HEAD":
            await sync_to_async(handle.close, thread_sensitive=False)()
            response = HttpResponse(content_type=content_type)
        else:
            response = StreamingHttpResponse(_chunks(handle), content_type=content_type)
        response["Content-Length"] = str(size)
        response["Content-Disposition"] = disposition
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        response["Cache-Control"] = "private, no-store"
        return response
