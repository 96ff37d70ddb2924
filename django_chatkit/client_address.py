"""The client's address, as far as the site can trust it (for per-address limits)."""

from __future__ import annotations

import ipaddress

from django.http import HttpRequest

from django_chatkit.conf import chatkit_settings

# One IPv6 user commonly holds a whole /64: counting single addresses would not limit anyone.
IPV6_PREFIX = 64


def client_address(request: HttpRequest) -> str:
    """``REMOTE_ADDR``, or the address the outermost trusted proxy received the request from.

    With ``TRUSTED_PROXY_COUNT`` = n, each of the n proxies appended the address it saw to
    ``X-Forwarded-For``, so the n-th entry from the right is the client's; entries left of it
    were sent by the client and prove nothing.
    """
    address = str(request.META.get("REMOTE_ADDR") or "")
    trusted = chatkit_settings.TRUSTED_PROXY_COUNT
    if trusted > 0:
        forwarded = [
            part.strip()
            for part in str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",")
            if part.strip()
        ]
        if forwarded:
            address = forwarded[-min(trusted, len(forwarded))]
    return _normalise(address)


def _normalise(address: str) -> str:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:64] or "unknown"
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/{IPV6_PREFIX}", strict=False))
    return str(parsed)
