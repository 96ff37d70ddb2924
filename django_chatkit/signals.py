"""Signals sent as conversations change (reference: docs/signals.md).

Every signal is sent with ``Signal.send`` from synchronous code, in the thread where the request
does its database work, right after the change it reports is committed: receivers are plain
functions that may use the ORM, as ``post_save`` receivers do. An exception a receiver raises
propagates (the op fails). Every signal passes ``context`` (a
:class:`django_chatkit.context.ChatKitContext`) too.
"""

from django.dispatch import Signal

# sender=Thread model; thread=chatkit.types.ThreadMetadata
thread_created = Signal()
# sender=ThreadItem model; thread_id=str, item=chatkit.types.ThreadItem (added or replaced)
item_saved = Signal()
# sender=Feedback model; thread_id=str, item_ids=list[str], kind="positive"|"negative"
feedback_received = Signal()
# sender=Run model; run_id=int, status="completed"|"cancelled"|"failed" (answer and title runs)
run_finished = Signal()
