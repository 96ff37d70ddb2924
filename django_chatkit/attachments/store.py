"""DjangoAttachmentStore: ChatKit's ``AttachmentStore`` over a Django ``STORAGES`` alias.

Two-phase upload: ``attachments.create`` makes a *pending* row and answers with an upload
descriptor; the bytes then go either to this site's upload view (a signed, single-use token in
the URL authorises them) or, with ``S3_PRESIGNED_UPLOADS`` on django-storages' S3 backend,
straight to S3 through a presigned PUT, verified when a message first uses the attachment.
Either way the row becomes *ready* only once its bytes have been checked and stored.

The attachment views find their rows through this store too (:meth:`load_pending_upload`,
:meth:`load_attachment_for_download`). Every query runs through ``django_chatkit.db.in_thread``,
which gives a pooled connection back once the query is done: a download streams its file for as
long as the client reads, and must not hold a connection meanwhile.
"""

from __future__ import annotations

from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from chatkit.store import AttachmentStore, NotFoundError
from chatkit.types import (
    Attachment,
    AttachmentCreateParams,
    AttachmentUploadDescriptor,
    FileAttachment,
    ImageAttachment,
)
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext

from django_chatkit import models
from django_chatkit.attachments import owner_quota, storage, uploads
from django_chatkit.attachments.downloads import StoredFile, find_downloadable
from django_chatkit.attachments.options import Limits, limits
from django_chatkit.attachments.previews import PLACEHOLDER_PREVIEW
from django_chatkit.attachments.tokens import UploadClaim, make_upload_token
from django_chatkit.attachments.uploads import PendingUpload
from django_chatkit.attachments.validation import Declared, check_declared
from django_chatkit.conf import chatkit_settings
from django_chatkit.context import ChatKitContext
from django_chatkit.db import in_thread
from django_chatkit.errors import RequestRejected
from django_chatkit.ids import new_typed_id
from django_chatkit.serialization import attachment_row_values


class DjangoAttachmentStore(AttachmentStore[ChatKitContext]):
    """Files in ``STORAGES[CHATKIT["STORAGE"]]``, rows in ``Attachment``, scoped by owner."""

    def generate_attachment_id(self, mime_type: str, context: ChatKitContext) -> str:
        return new_typed_id("attachment")

    async def create_attachment(
        self, input: AttachmentCreateParams, context: ChatKitContext
    ) -> Attachment:
        current = limits()
        declared = check_declared(input.name, input.mime_type, input.size, current)
        attachment_id = self.generate_attachment_id(declared.mime_type, context)
        alias = chatkit_settings.STORAGE
        incoming = ""
        if chatkit_settings.S3_PRESIGNED_UPLOADS and storage.is_s3(storage.get_storage(alias)):
            incoming = storage.new_name(attachment_id, "", incoming=True)
            url = await sync_to_async(storage.presigned_put, thread_sensitive=False)(
                alias, incoming, declared.mime_type, chatkit_settings.UPLOAD_TOKEN_MAX_AGE
            )
            descriptor = AttachmentUploadDescriptor(
                url=url,  # type: ignore[arg-type]
                method="PUT",
                headers={"Content-Type": declared.mime_type},
            )
        else:
            descriptor = AttachmentUploadDescriptor(
                url=self.upload_url(attachment_id, context),  # type: ignore[arg-type]
                method="POST",
            )
        attachment = _new_attachment(attachment_id, declared, descriptor)
        await in_thread(_insert_pending)(attachment, declared, alias, incoming, context, current)
        return attachment

    def upload_url(self, attachment_id: str, context: ChatKitContext) -> str:
        """The absolute URL of this site's upload view for the attachment, token included."""
        if context.request is None:
            raise RuntimeError(
                "DjangoAttachmentStore needs the request in the context to build an upload URL."
            )
        path = reverse("chatkit:upload", kwargs={"attachment_id": attachment_id})
        query = urlencode({"token": make_upload_token(attachment_id, context.owner)})
        return f"{context.request.build_absolute_uri(path)}?{query}"

    async def delete_attachment(self, attachment_id: str, context: ChatKitContext) -> None:
        # Only the ownership check: DjangoStore deletes the row next, and deleting a row
        # removes its files once the transaction commits (django_chatkit.attachments.lifecycle).
        if not await in_thread(_owned_exists)(attachment_id, context):
            raise NotFoundError(f"Attachment {attachment_id} not found")

    async def load_pending_upload(self, attachment_id: str, claim: UploadClaim) -> PendingUpload:
        """The pending attachment an upload token's ``claim`` lets its bearer upload to.

        The token stands in for the owner (the upload comes without the site's cookies). A
        token for another attachment or another owner, or an id that is missing or waits for a
        presigned S3 upload, is refused as a missing id (404); an attachment that already has
        its bytes is refused with a 409.
        """
        if claim.attachment_id != attachment_id:
            raise uploads.not_found(attachment_id)
        upload = await in_thread(uploads.load_row)(attachment_id)
        if upload is None or not claim.is_for(upload.owner) or upload.incoming_name:
            raise uploads.not_found(attachment_id)
        if upload.status != models.AttachmentStatus.PENDING:
            raise uploads.not_pending(attachment_id)
        return upload

    async def load_attachment_for_download(
        self, attachment_id: str, context: ChatKitContext
    ) -> StoredFile:
        """The stored file of a ready attachment, for its owner or staff allowed to review it.

        Raises ``NotFoundError`` for anyone else, exactly as for a missing id, and for an
        attachment that has no bytes yet.
        """
        found = await in_thread(find_downloadable)(attachment_id, context)
        if found is None:
            raise NotFoundError(f"Attachment {attachment_id} not found")
        return found

    async def ensure_uploaded(self, attachment_ids: list[str], context: ChatKitContext) -> None:
        """Called before a message uses ``attachment_ids``: each must have its bytes.

        Presigned S3 uploads are verified and completed here; an attachment still waiting
        for an upload to this site is refused (409).
        """
        if not attachment_ids:
            return
        pending = await in_thread(uploads.pending_rows)(attachment_ids, context.owner)
        current = limits()
        for upload in pending:
            if not upload.incoming_name:
                raise RequestRejected(
                    409,
                    "attachment_not_uploaded",
                    gettext("Attachment %(id)s has not been uploaded yet.") % {"id": upload.id},
                )
            try:
                await uploads.finish_incoming(upload, current)
            except RequestRejected as exc:
                if exc.code != "upload_already_used":  # a concurrent request completed it
                    raise


def _new_attachment(
    attachment_id: str, declared: Declared, descriptor: AttachmentUploadDescriptor
) -> Attachment:
    if declared.is_image:
        return ImageAttachment(
            id=attachment_id,
            name=declared.name,
            mime_type=declared.mime_type,
            upload_descriptor=descriptor,
            preview_url=PLACEHOLDER_PREVIEW,  # type: ignore[arg-type]
        )
    return FileAttachment(
        id=attachment_id,
        name=declared.name,
        mime_type=declared.mime_type,
        upload_descriptor=descriptor,
    )


def _owned_exists(attachment_id: str, context: ChatKitContext) -> bool:
    return models.Attachment.objects.filter(id=attachment_id, **context.owner.filter()).exists()


def _insert_pending(
    attachment: Attachment,
    declared: Declared,
    alias: str,
    incoming: str,
    context: ChatKitContext,
    limits: Limits,
) -> None:
    """Insert the pending row within the owner's limits (429 / 413 when it does not fit).

    Its ``size`` is the declared one until the bytes arrive, so the owner's byte count already
    includes what they announced (owner_quota).
    """
    with transaction.atomic():
        owner_quota.reserve(context.owner, limits, pending=1, size=declared.size)
        models.Attachment.objects.create(
            id=attachment.id,
            status=models.AttachmentStatus.PENDING,
            storage_alias=alias,
            incoming_name=incoming,
            size=declared.size,
            **context.owner.fields(),
            **attachment_row_values(attachment),
        )
