"""Inbox schemas."""

from __future__ import annotations

from pydantic import Field

from app.api.schemas.common import Schema, Timestamp


class InboxCreate(Schema):
    address: str | None = Field(
        default=None,
        max_length=320,
        description="Full address or a bare local part (gets the first harness domain). "
        "Omitted: a random, unguessable address.",
    )
    name: str | None = Field(default=None, max_length=200)
    tags: list[str] = Field(default_factory=list, max_length=50)
    expires_in: int | None = Field(
        default=None, gt=0, le=10 * 365 * 86400, description="Seconds until the inbox expires."
    )


class InboxOut(Schema):
    id: str
    address: str
    name: str | None
    tags: list[str]
    created_at: Timestamp
    expires_at: Timestamp | None
    message_count: int
