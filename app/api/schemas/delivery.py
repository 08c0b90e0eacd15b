"""Send request, outbound message, delivery and its event timeline."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from app.api.schemas.common import Schema, Timestamp

DeliveryState = Literal["queued", "deferred", "delivered", "bounced", "expired", "held"]
WaitState = Literal["queued", "deferred", "delivered", "bounced", "expired", "held", "final"]


class AttachmentIn(Schema):
    filename: str = Field(min_length=1, max_length=255)
    content_type: str = Field(default="application/octet-stream", max_length=255)
    content_base64: str


class SendRequest(Schema):
    to: list[str] = Field(default_factory=list, max_length=100)
    cc: list[str] = Field(default_factory=list, max_length=100)
    bcc: list[str] = Field(default_factory=list, max_length=100)
    subject: str = Field(default="", max_length=998)
    text: str | None = None
    html: str | None = None
    reply_to: list[str] | str | None = None
    headers: dict[str, str] = Field(default_factory=dict, max_length=100)
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=50)


class ReleaseRequest(Schema):
    to: list[str] = Field(min_length=1, max_length=100)


class ResponseOut(Schema):
    code: int | None
    enhanced: str | None
    text: str | None
    remote: str | None


class DeliveryEventOut(Schema):
    at: Timestamp
    type: str
    code: int | None
    enhanced: str | None
    text: str | None
    remote: str | None


class DeliveryOut(Schema):
    id: str
    outbound_id: str
    recipient: str
    route: str
    state: DeliveryState
    attempts: int
    next_attempt_at: Timestamp | None
    last_response: ResponseOut | None
    created_at: Timestamp
    updated_at: Timestamp
    events: list[DeliveryEventOut]


class SendOut(Schema):
    id: str
    message_id: str | None
    deliveries: list[DeliveryOut]


class OutboundOut(Schema):
    id: str
    message_id: str | None
    inbox_id: str | None
    source: str
    mail_from: str
    subject: str | None
    recipients: list[str]
    size: int
    created_at: Timestamp
    deliveries: list[DeliveryOut]
