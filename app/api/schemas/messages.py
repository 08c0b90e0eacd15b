"""Message schemas: the summary in lists, the full message, and their parts."""

from __future__ import annotations

from pydantic import Field

from app.api.schemas.common import Schema, Timestamp


class AddressOut(Schema):
    name: str | None
    address: str


class HeaderOut(Schema):
    name: str
    value: str


class AttachmentOut(Schema):
    id: str
    filename: str | None
    content_type: str
    size: int
    content_id: str | None
    disposition: str


class EnvelopeOut(Schema):
    mail_from: str
    rcpt_to: list[str]
    client_address: str | None
    helo: str | None
    tls: bool
    authenticated: str | None


class MessageSummaryOut(Schema):
    id: str
    inbox_id: str
    subject: str | None
    from_: AddressOut | None = Field(alias="from")
    to: list[AddressOut]
    received_at: Timestamp
    seen: bool
    size: int
    has_attachments: bool


class MessageOut(MessageSummaryOut):
    message_id: str | None
    submission_id: str
    cc: list[AddressOut]
    bcc: list[AddressOut]
    reply_to: list[AddressOut]
    date: Timestamp | None
    headers: list[HeaderOut]
    text: str | None
    html: str | None
    attachments: list[AttachmentOut]
    envelope: EnvelopeOut
    links: list[str]
    codes: list[str]
    parse_error: str | None


class MessagePatch(Schema):
    seen: bool


class MessagesConflictOut(Schema):
    error: str
    detail: str
    items: list[MessageOut]


class DeletedOut(Schema):
    deleted: int = Field(description="How many messages were deleted.")
