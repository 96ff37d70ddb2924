"""Signals sent as conversations change. Receivers run in the request's worker thread.

Every signal passes ``context`` (a :class:`django_chatkit.context.ChatKitContext`) too.
"""

from django.dispatch import Signal

# sender=Thread model; thread=chatkit.types.ThreadMetadata
thread_created = Signal()
# sender=ThreadItem model; thread_id=str, item=chatkit.types.ThreadItem (added or replaced)
item_saved = Signal()
# sender=Feedback model; thread_id=str, item_ids=list[str], kind="positive"|"negative"
feedback_received = Signal()
# sender=Run model; run_id=int, status="completed"|"cancelled"|"failed"
run_finished = Signal()
