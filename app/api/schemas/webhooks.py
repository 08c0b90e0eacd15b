"""Webhook schemas: the endpoint, its calls (one per event) and each POST attempt."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from app.api.schemas.common import Schema, Timestamp

WebhookEvent = Literal["message.received", "delivery.updated"]
EVENTS: tuple[WebhookEvent, ...] = ("message.received", "delivery.updated")


class WebhookCreate(Schema):
    url: str = Field(max_length=2000, description="http(s) URL that receives a POST per event")
    events: list[WebhookEvent] = Field(default_factory=lambda: list(EVENTS), min_length=1)
    inbox_id: str | None = Field(default=None, description="Only this inbox's events")
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=200,
        description="HMAC key of the signatures; generated (and shown once) when omitted",
    )
    payload_format: str = Field(default="native", max_length=32)


class WebhookOut(Schema):
    id: str
    url: str
    events: list[str]
    inbox_id: str | None
    payload_format: str
    created_at: Timestamp
    secret: str | None = Field(default=None, description="Only in the answer to the create request")


class WebhookAttemptOut(Schema):
    call_id: str
    event: str
    subject_id: str = Field(description="The message or delivery the event is about")
    attempt: int
    at: Timestamp
    status_code: int | None
    error: str | None
    duration_ms: int
    response_excerpt: str | None
    call_state: str


class WebhookCallOut(Schema):
    id: str
    webhook_id: str
    event: str
    subject_id: str
    state: Literal["queued", "deferred", "delivered", "failed"]
    attempts: int
    next_attempt_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp
