"""Opaque cursors bound to the query that produced them.

A cursor is base64url JSON of ``{"k": <position>, "f": <fingerprint>}``; the
fingerprint hashes the query's filters, so a cursor replayed against another
query answers 400 ``invalid_cursor`` instead of silently skipping rows.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from app.errors import InvalidCursor


def fingerprint(kind: str, **filters: Any) -> str:
    blob = json.dumps([kind, sorted(filters.items())], default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def encode(position: Any, fp: str) -> str:
    blob = json.dumps({"k": position, "f": fp}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(blob).decode().rstrip("=")


def decode(cursor: str | None, fp: str) -> Any:
    """The position stored in ``cursor``; None when there is no cursor."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursor("the cursor is malformed") from exc
    if not isinstance(data, dict) or data.get("f") != fp or "k" not in data:
        raise InvalidCursor("the cursor does not belong to this query")
    return data["k"]
