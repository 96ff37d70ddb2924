"""Upload tokens: short-lived, signed, bound to one attachment and its owner.

The upload may come from OpenAI's iframe, cross-origin and without the site's cookies, so the
token in the upload URL is what authorises it. It is ``django.core.signing`` output (readable,
not secret) holding the attachment id and a keyed fingerprint of the owner, never the owner's
user id or anonymous key themselves. Single use comes from the row: a token only works while
its attachment is still pending.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core import signing
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext

from django_chatkit.conf import chatkit_settings
from django_chatkit.context import Owner
from django_chatkit.errors import RequestRejected

SALT = "django_chatkit.attachments.upload"


def owner_fingerprint(owner: Owner) -> str:
    who = f"user:{owner.user_id}" if owner.user_id is not None else f"anon:{owner.anonymous_key}"
    return salted_hmac(f"{SALT}.owner", who, algorithm="sha256").hexdigest()[:32]


@dataclass(frozen=True)
class UploadClaim:
    attachment_id: str
    owner: str  # owner_fingerprint of the owner the token was made for

    def is_for(self, owner: Owner) -> bool:
        return constant_time_compare(self.owner, owner_fingerprint(owner))


def make_upload_token(attachment_id: str, owner: Owner) -> str:
    return signing.dumps({"a": attachment_id, "o": owner_fingerprint(owner)}, salt=SALT)


def read_upload_token(token: str | None) -> UploadClaim:
    """The claim of a valid, unexpired token; raises :class:`RequestRejected` (403) otherwise."""
    if not token:
        raise RequestRejected(
            403, "upload_token_missing", "The upload URL carries no token: use the URL given."
        )
    try:
        data = signing.loads(token, salt=SALT, max_age=chatkit_settings.UPLOAD_TOKEN_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise RequestRejected(
            403,
            "upload_token_expired",
            gettext("The upload URL has expired: attach the file again."),
        ) from exc
    except signing.BadSignature as exc:
        raise RequestRejected(
            403, "upload_token_invalid", "The upload token is not valid."
        ) from exc
    if not isinstance(data, dict) or not {"a", "o"} <= data.keys():
        raise RequestRejected(403, "upload_token_invalid", "The upload token is not valid.")
    return UploadClaim(attachment_id=str(data["a"]), owner=str(data["o"]))
