"""``Attachment.metadata`` keys (server-side only) naming where an attachment's bytes are stored.

Written by the upload path and read by the agent's converter. They live here, apart from both,
so that taking an upload does not import the converter and with it the Agents SDK.
"""

from __future__ import annotations

STORAGE_ALIAS_KEY = "storage_alias"
STORAGE_NAME_KEY = "storage_name"
