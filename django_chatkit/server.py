"""DjangoChatKitServer: the ChatKit protocol plus the policy the SDK leaves to the backend.

The SDK never checks that ids exist before a stream starts, never enforces a thread's
``locked``/``closed`` status and keeps feedback nowhere. This server checks every id the request
names before anything runs (so the view can answer a real 4xx instead of an error mid-stream),
refuses new turns on locked and closed threads, renames and feedback on locked ones, renames and
retries (which remove items) on threads under legal hold, and stores feedback.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable

from chatkit.errors import CustomStreamError
from chatkit.server import ChatKitServer, NonStreamingResult, StreamingResult
from chatkit.store import AttachmentStore, NotFoundError
from chatkit.types import (
    AttachmentsCreateReq,
    AttachmentsDeleteReq,
    ChatKitReq,
    ClientToolCallItem,
    ErrorEvent,
    FeedbackKind,
    InputTranscribeReq,
    ItemsFeedbackReq,
    LockedStatus,
    StreamingReq,
    StructuredInputItem,
    ThreadMetadata,
    ThreadsAddClientToolOutputReq,
    ThreadsAddStructuredInputReq,
    ThreadsAddUserMessageReq,
    ThreadsCreateReq,
    ThreadsCustomActionReq,
    ThreadsRetryAfterItemReq,
    ThreadsSyncCustomActionReq,
    ThreadStreamEvent,
    ThreadsUpdateReq,
    UserMessageInput,
    UserMessageItem,
    WidgetItem,
    is_streaming_req,
)
from django.utils.translation import gettext, ngettext
from pydantic import TypeAdapter, ValidationError

from django_chatkit.conf import chatkit_settings
from django_chatkit.context import ChatKitContext
from django_chatkit.db import in_thread
from django_chatkit.errors import SERVER_FAULT, RequestRejected, StoredDataInvalid
from django_chatkit.live import staff
from django_chatkit.loading import get_attachment_store
from django_chatkit.quotas import check_and_count_request
from django_chatkit.store import DjangoStore, locked_refusal, with_reason
from django_chatkit.titles import MAX_TITLE_LENGTH

logger = logging.getLogger("django_chatkit")

REQUEST_ADAPTER: TypeAdapter[ChatKitReq] = TypeAdapter(ChatKitReq)

# Ops that start a new turn on an existing thread: refused while it is locked or closed.
TURN_OPS = (
    ThreadsAddUserMessageReq,
    ThreadsAddClientToolOutputReq,
    ThreadsAddStructuredInputReq,
    ThreadsRetryAfterItemReq,
    ThreadsCustomActionReq,
    ThreadsSyncCustomActionReq,
)


def status_message(thread: ThreadMetadata) -> str:
    reason = getattr(thread.status, "reason", None)
    if thread.status.type == "locked":
        message = gettext("This conversation is locked and cannot take new messages.")
    else:
        message = gettext("This conversation is closed and cannot take new messages.")
    return with_reason(message, reason)


# Ops after which the SDK calls respond(): the model turns that quotas count.
RESPONDING_OPS = (
    ThreadsCreateReq,
    ThreadsAddUserMessageReq,
    ThreadsAddClientToolOutputReq,
    ThreadsAddStructuredInputReq,
    ThreadsRetryAfterItemReq,
)


# Set in context.extra for a request that may make the agent answer an existing thread: the
# thread is then checked for a takeover just before respond() would run.
ANSWERING_EXISTING = "django_chatkit.answering_existing"


def _check_title(title: str) -> None:
    if len(title) > MAX_TITLE_LENGTH:
        raise RequestRejected(
            400,
            "invalid_request",
            gettext("A title may be at most %(count)d characters long.")
            % {"count": MAX_TITLE_LENGTH},
        )


# Attachment.mime_type is a 255-character column; names are kept in full but bounded anyway.
MAX_MIME_TYPE_LENGTH = 255
MAX_NAME_LENGTH = 1024


def _check_attachment_params(name: str, mime_type: str) -> None:
    if len(mime_type) > MAX_MIME_TYPE_LENGTH:
        raise RequestRejected(400, "invalid_request", "The MIME type is too long.")
    if len(name) > MAX_NAME_LENGTH:
        raise RequestRejected(400, "invalid_request", "The file name is too long.")


def _protocol_violations(exc: ValidationError) -> str:
    problems = [
        f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
        for error in exc.errors(include_url=False)[:5]
    ]
    return "The request does not match the ChatKit protocol. " + "; ".join(problems)


def parse_request(body: str | bytes | bytearray) -> ChatKitReq:
    """The request the body holds, or :class:`RequestRejected` (400) when it holds none.

    Only the client's body is validated here: a stored row that fails validation later is a
    fault of the server (:class:`StoredDataInvalid`), however alike the two pydantic errors are.
    """
    try:
        return REQUEST_ADAPTER.validate_json(body)
    except ValidationError as exc:
        raise RequestRejected(400, "invalid_request", _protocol_violations(exc)) from exc


def _error_frame(message: str) -> bytes:
    event = ErrorEvent(code="custom", message=message, allow_retry=False)
    return b"data: " + event.model_dump_json(by_alias=True, exclude_none=True).encode() + b"\n\n"


async def _refusal(message: str) -> AsyncGenerator[bytes, None]:
    yield _error_frame(message)


def _name_thread(exc: StoredDataInvalid, request: ChatKitReq) -> None:
    """A payload too broken to name its thread: the request names it."""
    exc.thread_id = exc.thread_id or getattr(request.params, "thread_id", None)


async def _taken_over_stream() -> AsyncIterator[ThreadStreamEvent]:
    yield staff.taken_over_notice()


class DjangoChatKitServer(ChatKitServer[ChatKitContext]):
    """Subclass and implement :meth:`respond` (or use the agent server) to answer users."""

    store: DjangoStore

    def __init__(
        self,
        store: DjangoStore | None = None,
        attachment_store: AttachmentStore[ChatKitContext] | None = None,
    ) -> None:
        super().__init__(
            store=store or DjangoStore(),
            attachment_store=attachment_store or get_attachment_store(),
        )

    async def respond(
        self,
        thread: ThreadMetadata,
        input_user_message: UserMessageItem | None,
        context: ChatKitContext,
    ) -> AsyncIterator[ThreadStreamEvent]:
        raise CustomStreamError(
            "No assistant is configured: set CHATKIT['SERVER'] to a server that answers.",
            allow_retry=False,
        )
        yield  # pragma: no cover - makes this an async generator

    async def process(
        self, request: str | bytes | bytearray, context: ChatKitContext
    ) -> StreamingResult | NonStreamingResult:
        """Parse, check every id and the thread's status, then run the op.

        Raises :class:`RequestRejected` (a body that is not a ChatKit request, a refused op)
        and ``NotFoundError`` (missing or foreign id) before any work starts, and
        :class:`StoredDataInvalid` when a stored row it reads no longer validates.
        """
        parsed = parse_request(request)
        try:
            refusal = await self.check_request(parsed, context)
            if refusal is not None:
                return StreamingResult(_refusal(refusal))
            if is_streaming_req(parsed):
                return StreamingResult(self._stream(parsed, context))
            return NonStreamingResult(await self._process_non_streaming(parsed, context))
        except StoredDataInvalid as exc:
            _name_thread(exc, parsed)
            raise

    async def _stream(
        self, request: StreamingReq, context: ChatKitContext
    ) -> AsyncGenerator[bytes, None]:
        """The SDK's stream, ended by an error event when a stored row it reads is corrupt
        (the SDK would break the stream off, or report it as the model's fault)."""
        stream = self._process_streaming(request, context)
        async with contextlib.aclosing(stream):
            try:
                async for chunk in stream:
                    yield chunk
            except StoredDataInvalid as exc:
                _name_thread(exc, request)
                logger.error("ChatKit could not finish %s: %s", request.type, exc, exc_info=exc)
                yield _error_frame(gettext(SERVER_FAULT))

    async def _process_events(
        self,
        thread: ThreadMetadata,
        context: ChatKitContext,
        stream: Callable[[], AsyncIterator[ThreadStreamEvent]],
    ) -> AsyncIterator[ThreadStreamEvent]:
        """The SDK's event pipeline, minus the answer while staff have taken the thread over
        (django_chatkit.live.staff), as the thread was loaded at the start of this request (no
        query of its own, no extra trip to the database thread before the model call). A
        takeover committed since is seen by the answer's stop watch (django_chatkit.stops),
        which stops the answer within POLL_SECONDS."""
        if context.extra.get(ANSWERING_EXISTING) and await self._taken_over(thread.id, context):
            stream = _taken_over_stream
        async for event in super()._process_events(thread, context, stream):
            yield event

    async def _taken_over(self, thread_id: str, context: ChatKitContext) -> bool:
        loaded = self.store.is_taken_over(thread_id, context)
        if loaded is not None:
            return loaded
        return await in_thread(staff.is_taken_over)(thread_id)

    async def check_request(self, request: ChatKitReq, context: ChatKitContext) -> str | None:
        """Raise for a request that cannot run; return a message to refuse it as a stream error.

        A request that would make the server answer (a turn) is counted against the owner's
        quotas last, once everything else is known to be fine, so that a refused turn stores
        nothing and a request refused for another reason costs no quota.
        """
        refusal = await self._check_ids_and_status(request, context)
        if refusal is not None:
            return refusal
        if isinstance(request, RESPONDING_OPS):
            context.extra[ANSWERING_EXISTING] = not isinstance(request, ThreadsCreateReq)
            await self.check_quota(request, context)
        # The only write of vetting, so last: attachments another thread already sent are
        # copied for this one (an attachment belongs to one thread).
        match request:
            case ThreadsCreateReq():
                await self._attachments_into(request.params.input, None, context)
            case ThreadsAddUserMessageReq():
                await self._attachments_into(
                    request.params.input, request.params.thread_id, context
                )
        return None

    async def check_quota(self, request: ChatKitReq, context: ChatKitContext) -> None:
        """Count a turn against the quotas; raise :class:`QuotaExceeded` when one is spent."""
        await check_and_count_request(context)

    async def _check_ids_and_status(
        self, request: ChatKitReq, context: ChatKitContext
    ) -> str | None:
        self._check_supported(request)
        match request:
            case ThreadsCreateReq():
                await self._check_attachments(request.params.input.attachments, context)
                return None
            case ThreadsAddUserMessageReq():
                await self._check_attachments(request.params.input.attachments, context)
            case ThreadsUpdateReq():
                _check_title(request.params.title)
                # Loaded for the SDK's op too (load_thread_for_request): no extra query.
                thread = await self.store.load_thread_for_request(request.params.thread_id, context)
                if isinstance(thread.status, LockedStatus):
                    raise locked_refusal(gettext("it cannot be renamed"), thread.status.reason)
                if self.store.is_on_legal_hold(thread.id, context):
                    raise RequestRejected(
                        409,
                        "thread_on_legal_hold",
                        gettext("This conversation cannot be renamed."),
                    )
                return None
            case AttachmentsCreateReq():
                _check_attachment_params(request.params.name, request.params.mime_type)
                return None
            case ItemsFeedbackReq():
                if len(request.params.item_ids) > chatkit_settings.MAX_PAGE_SIZE:
                    raise RequestRejected(
                        400,
                        "invalid_request",
                        f"At most {chatkit_settings.MAX_PAGE_SIZE} items per feedback request.",
                    )
                return None
        if not isinstance(request, TURN_OPS):
            return None
        thread = await self.store.load_thread_for_request(request.params.thread_id, context)
        if thread.status.type != "active":
            if isinstance(request, ThreadsSyncCustomActionReq):
                raise RequestRejected(409, "thread_" + thread.status.type, status_message(thread))
            return status_message(thread)
        if isinstance(request, ThreadsRetryAfterItemReq) and self.store.is_on_legal_hold(
            thread.id, context
        ):
            # A retry deletes the items after the retried message: evidence the hold keeps.
            raise RequestRejected(
                409,
                "thread_on_legal_hold",
                gettext("This conversation's messages cannot be removed, so it cannot be retried."),
            )
        if isinstance(request, ThreadsRetryAfterItemReq) and await in_thread(staff.is_taken_over)(
            thread.id
        ):
            # A retry deletes what came after the message, staff replies included.
            raise RequestRejected(
                409,
                "thread_taken_over",
                gettext("A person is answering this conversation: it cannot be retried now."),
            )
        await self._check_turn_target(request, context)
        return None

    def _check_supported(self, request: ChatKitReq) -> None:
        cls = type(self)
        unsupported = (
            (
                isinstance(request, (AttachmentsCreateReq, AttachmentsDeleteReq))
                and self.attachment_store is None,
                "Attachments are not enabled on this server.",
            ),
            (
                isinstance(request, InputTranscribeReq)
                and cls.transcribe is ChatKitServer.transcribe,
                "Dictation is not enabled.",
            ),
            (
                isinstance(request, ThreadsCustomActionReq) and cls.action is ChatKitServer.action,
                "This server takes no actions.",
            ),
            (
                isinstance(request, ThreadsSyncCustomActionReq)
                and cls.sync_action is ChatKitServer.sync_action,
                "This server takes no actions.",
            ),
        )
        for refused, message in unsupported:
            if refused:
                raise RequestRejected(400, "unsupported_operation", message)

    async def _check_attachments(self, attachment_ids: list[str], context: ChatKitContext) -> None:
        limit = int(chatkit_settings.ATTACHMENTS["MAX_COUNT"])
        if len(attachment_ids) > limit:
            raise RequestRejected(
                400,
                "invalid_request",
                ngettext(
                    "A message may carry at most %(count)d attachment.",
                    "A message may carry at most %(count)d attachments.",
                    limit,
                )
                % {"count": limit},
            )
        missing = await self.store.missing_attachments(attachment_ids, context)
        if missing:
            raise NotFoundError(f"Attachment(s) {', '.join(missing)} not found")
        # Stores with an upload phase (DjangoAttachmentStore) make sure the bytes are there.
        ensure_uploaded = getattr(self.attachment_store, "ensure_uploaded", None)
        if ensure_uploaded is not None:
            await ensure_uploaded(attachment_ids, context)

    async def _attachments_into(
        self, input: UserMessageInput, thread_id: str | None, context: ChatKitContext
    ) -> None:
        """Point the message at attachments of its own: an attachment another thread already
        sent is replaced by a copy (django_chatkit.attachments.copies), so that deleting
        either thread leaves the other's files alone."""
        if input.attachments:
            input.attachments = await self.store.attachments_for_thread(
                input.attachments, thread_id, context
            )

    async def _check_turn_target(self, request: ChatKitReq, context: ChatKitContext) -> None:
        """The item a turn op names must exist in the thread and be of the right kind."""
        match request:
            case ThreadsRetryAfterItemReq():
                item = await self.store.load_item(
                    request.params.thread_id, request.params.item_id, context
                )
                if not isinstance(item, UserMessageItem):
                    raise RequestRejected(
                        400, "invalid_request", "Only a user message can be retried."
                    )
            case ThreadsAddStructuredInputReq():
                item = await self.store.load_item(
                    request.params.thread_id, request.params.item_id, context
                )
                if not isinstance(item, StructuredInputItem):
                    raise RequestRejected(
                        400, "invalid_request", "Only a structured input item can be answered."
                    )
                if item.status != "pending":
                    raise RequestRejected(
                        409, "already_answered", "This structured input was already answered."
                    )
            case ThreadsCustomActionReq() | ThreadsSyncCustomActionReq():
                if request.params.item_id is None:
                    return
                item = await self.store.load_item(
                    request.params.thread_id, request.params.item_id, context
                )
                if not isinstance(item, WidgetItem):
                    raise RequestRejected(
                        400, "invalid_request", "Actions can only come from a widget item."
                    )
            case ThreadsAddClientToolOutputReq():
                newest = await self.store.load_thread_items(
                    request.params.thread_id, None, 1, "desc", context
                )
                last = newest.data[0] if newest.data else None
                if not isinstance(last, ClientToolCallItem) or last.status != "pending":
                    raise RequestRejected(
                        400,
                        "invalid_request",
                        "The thread is not waiting for a client tool output.",
                    )

    async def add_feedback(
        self,
        thread_id: str,
        item_ids: list[str],
        feedback: FeedbackKind,
        context: ChatKitContext,
    ) -> None:
        await self.store.save_feedback(thread_id, item_ids, feedback, context)
