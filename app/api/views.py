"""Row -> response schema conversions (the only place that knows both shapes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.api.schemas.inboxes import InboxOut
from app.api.schemas.messages import (
    AddressOut,
    AttachmentOut,
    EnvelopeOut,
    HeaderOut,
    MessageOut,
    MessageSummaryOut,
)
from app.store.models import Inbox, Message


def inbox_out(inbox: Inbox, *, tags: list[str], message_count: int) -> InboxOut:
    return InboxOut(
        id=inbox.id,
        address=inbox.address,
        name=inbox.name,
        tags=tags,
        created_at=inbox.created_at,
        expires_at=inbox.expires_at,
        message_count=message_count,
    )


def _addr(value: dict[str, Any]) -> AddressOut:
    return AddressOut(name=value.get("name"), address=value.get("address") or "")


def _from(m: Message) -> AddressOut | None:
    if m.from_address is None and m.from_name is None:
        return None
    return AddressOut(name=m.from_name, address=m.from_address or "")


def _summary_fields(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "inbox_id": m.inbox_id,
        "subject": m.subject,
        "from_": _from(m),
        "to": [_addr(a) for a in m.to],
        "received_at": m.received_at,
        "seen": m.seen,
        "size": m.size,
        "has_attachments": m.has_attachments,
    }


def summary_out(m: Message) -> MessageSummaryOut:
    return MessageSummaryOut(**_summary_fields(m))


def message_out(m: Message) -> MessageOut:
    d = m.details
    date = d.get("date")
    return MessageOut(
        **_summary_fields(m),
        message_id=m.message_id_header,
        submission_id=m.submission_id,
        cc=[_addr(a) for a in d.get("cc", [])],
        bcc=[_addr(a) for a in d.get("bcc", [])],
        reply_to=[_addr(a) for a in d.get("reply_to", [])],
        date=datetime.fromisoformat(date) if date else None,
        headers=[HeaderOut(name=h["name"], value=h["value"]) for h in d.get("headers", [])],
        text=d.get("text"),
        html=d.get("html"),
        attachments=[
            AttachmentOut(
                id=a["id"],
                filename=a.get("filename"),
                content_type=a["content_type"],
                size=a["size"],
                content_id=a.get("content_id"),
                disposition=a["disposition"],
            )
            for a in d.get("attachments", [])
        ],
        envelope=EnvelopeOut(**d["envelope"]),
        links=list(d.get("links", [])),
        codes=list(d.get("codes", [])),
        parse_error=m.parse_error,
    )
