"""Our message views in Mailpit's JSON shapes (PascalCase keys, ``[]`` for empty lists).

Ids are ours (UUIDs; Mailpit's are short UUIDs, and clients treat both as
opaque), ``PartID`` is our attachment id. Times are RFC 3339 in UTC like Go's
``time.Time``: a fraction of at most milliseconds, trailing zeros dropped.
``Tags`` come from the ``X-Tags`` header (what Mailpit's send writes); there
is no other tag store. ``Read`` is also in the full message (the PyPI client
requires it; current Mailpit omits it).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from app.api.schemas.messages import AddressOut, AttachmentOut, MessageOut

SNIPPET_CHARS = 250
_TAGS = re.compile(r"[^a-zA-Z0-9\-._ ]")
_SPACE = re.compile(r"\s+")
_HTML_TAG = re.compile(r"<(style|script)\b.*?</\1\s*>|<[^>]+>", re.IGNORECASE | re.DOTALL)


def go_time(value: datetime) -> str:
    """``2026-11-28T21:07:36.12Z`` (milliseconds, trailing zeros dropped)."""
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{value.microsecond // 1000:03d}".rstrip("0")
    return f"{text}.{fraction}Z" if fraction else f"{text}Z"


def address(a: AddressOut) -> dict[str, str]:
    return {"Name": a.name or "", "Address": a.address}


def addresses(values: list[AddressOut]) -> list[dict[str, str]]:
    return [address(a) for a in values]


def message_id(m: MessageOut) -> str:
    """The Message-ID header without angle brackets."""
    value = (m.message_id or "").strip()
    return value[1:-1] if value.startswith("<") and value.endswith(">") else value


def header_values(m: MessageOut, name: str) -> list[str]:
    wanted = name.lower()
    return [h.value for h in m.headers if h.name.lower() == wanted]


def tags(m: MessageOut) -> list[str]:
    found: list[str] = []
    for value in header_values(m, "X-Tags"):
        for tag in value.split(","):
            clean = _TAGS.sub("", tag).strip()
            if clean and clean not in found:
                found.append(clean)
    return sorted(found, key=str.lower)


def snippet(m: MessageOut) -> str:
    """Up to 250 characters of the text (or the HTML without tags), spaces collapsed."""
    body = m.text if m.text and m.text.strip() else _HTML_TAG.sub(" ", m.html or "")
    text = _SPACE.sub(" ", body).strip()
    return text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS].rstrip() + "..."


def _attachments(m: MessageOut, disposition: str) -> list[AttachmentOut]:
    return [a for a in m.attachments if a.disposition == disposition]


def attachment(a: AttachmentOut) -> dict[str, Any]:
    return {
        "PartID": a.id,
        "FileName": a.filename or "",
        "ContentType": a.content_type,
        "ContentID": a.content_id or "",
        "Size": a.size,
    }


def username(m: MessageOut) -> str:
    return m.envelope.authenticated or ""


def summary(m: MessageOut) -> dict[str, Any]:
    """Mailpit's ``MessageSummary`` (an item of message lists)."""
    return {
        "ID": m.id,
        "MessageID": message_id(m),
        "Read": m.seen,
        "From": address(m.from_) if m.from_ else None,
        "To": addresses(m.to),
        "Cc": addresses(m.cc),
        "Bcc": addresses(m.bcc),
        "ReplyTo": addresses(m.reply_to),
        "Subject": m.subject or "",
        "Created": go_time(m.received_at),
        "Username": username(m),
        "Tags": tags(m),
        "Size": m.size,
        "Attachments": len(_attachments(m, "attachment")),
        "Snippet": snippet(m),
    }


def message(m: MessageOut) -> dict[str, Any]:
    """Mailpit's ``Message`` (one message with bodies and attachment lists)."""
    return_path = header_values(m, "Return-Path")
    unsubscribe = header_values(m, "List-Unsubscribe")
    return {
        "ID": m.id,
        "MessageID": message_id(m),
        "Read": m.seen,
        "From": address(m.from_) if m.from_ else None,
        "To": addresses(m.to),
        "Cc": addresses(m.cc),
        "Bcc": addresses(m.bcc),
        "ReplyTo": addresses(m.reply_to),
        "ReturnPath": return_path[0].strip().strip("<>") if return_path else m.envelope.mail_from,
        "Subject": m.subject or "",
        "ListUnsubscribe": {
            "Header": unsubscribe[0] if unsubscribe else "",
            "Links": re.findall(r"<([^>]+)>", unsubscribe[0]) if unsubscribe else [],
            "Errors": "",
            "HeaderPost": (header_values(m, "List-Unsubscribe-Post") or [""])[0],
        },
        "Date": go_time(m.date or m.received_at),
        "Created": go_time(m.received_at),
        "Tags": tags(m),
        "Username": username(m),
        "Text": m.text or "",
        "HTML": m.html or "",
        "Size": m.size,
        "Inline": [attachment(a) for a in _attachments(m, "inline")],
        "Attachments": [attachment(a) for a in _attachments(m, "attachment")],
    }


_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def canonical_header(name: str) -> str:
    """Go's ``textproto.CanonicalMIMEHeaderKey``: ``message-ID`` -> ``Message-Id``
    (names that are not tokens stay as they are)."""
    if not _TOKEN.match(name):
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def headers(m: MessageOut, delivered_to: str | None) -> dict[str, list[str]]:
    """``{"Header-Name": [values...]}``, names canonical like Go's (``Message-Id``),
    sorted by name, values in message order.

    ``Delivered-To`` (the receiving inbox, as a local MDA adds it) is added when
    the message has none: the PyPI client requires the key."""
    found: dict[str, list[str]] = {}
    for h in m.headers:
        found.setdefault(canonical_header(h.name), []).append(h.value)
    if delivered_to and "Delivered-To" not in found:
        found["Delivered-To"] = [delivered_to]
    return dict(sorted(found.items()))


def messages_summary(
    items: list[MessageOut],
    *,
    total: int,
    unread: int,
    matches: int,
    matches_unread: int,
    start: int,
) -> dict[str, Any]:
    """Mailpit's ``MessagesSummary`` list envelope (with the legacy ``count``)."""
    found_tags = sorted({t for m in items for t in tags(m)}, key=str.lower)
    return {
        "total": total,
        "unread": unread,
        "count": len(items),
        "messages_count": matches,
        "messages_unread": matches_unread,
        "start": start,
        "tags": found_tags,
        "messages": [summary(m) for m in items],
    }
