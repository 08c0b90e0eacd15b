"""Webhook signatures: HMAC-SHA256 of the body, and of the timestamp with the body.

SUMMARY
    ``X-Mailharness-Signature: sha256=<hex>`` is the HMAC of the exact body with
    the webhook's secret (the contract's header). Because a body alone can be
    replayed, every POST also carries ``X-Mailharness-Timestamp: <unix
    seconds>`` and ``X-Mailharness-Signature-Timestamped: t=<ts>,sha256=<hex>``,
    the HMAC of ``"<ts>." + body``: a receiver that checks it and refuses
    timestamps older than a few minutes cannot be replayed to. ``verify``
    does both checks in constant time (for receivers and our tests).

INPUTS / OUTPUTS
    ``sign_headers(secret, body, now)`` -> header dict; ``verify(...)`` -> bool.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

SIGNATURE = "X-Mailharness-Signature"
TIMESTAMP = "X-Mailharness-Timestamp"
SIGNATURE_TIMESTAMPED = "X-Mailharness-Signature-Timestamped"


def _hmac(secret: str, data: bytes) -> str:
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def sign_headers(secret: str, body: bytes, now: int) -> dict[str, str]:
    return {
        SIGNATURE: f"sha256={_hmac(secret, body)}",
        TIMESTAMP: str(now),
        SIGNATURE_TIMESTAMPED: f"t={now},sha256={_hmac(secret, str(now).encode() + b'.' + body)}",
    }


def verify(
    secret: str, body: bytes, headers: Mapping[str, str], *, now: int, tolerance: int = 300
) -> bool:
    """Both signatures match, and the timestamp is within ``tolerance`` seconds of now."""
    lower = {k.lower(): v for k, v in headers.items()}
    plain = lower.get(SIGNATURE.lower(), "")
    stamped = dict(
        part.split("=", 1)
        for part in lower.get(SIGNATURE_TIMESTAMPED.lower(), "").split(",")
        if "=" in part
    )
    ts = stamped.get("t", "")
    if not ts.isdigit() or abs(now - int(ts)) > tolerance or lower.get(TIMESTAMP.lower()) != ts:
        return False
    ok_plain = hmac.compare_digest(plain, f"sha256={_hmac(secret, body)}")
    ok_stamped = hmac.compare_digest(
        stamped.get("sha256", ""), _hmac(secret, ts.encode() + b"." + body)
    )
    return ok_plain and ok_stamped
