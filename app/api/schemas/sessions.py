"""SMTP session transcript schemas."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from app.api.schemas.common import Schema, Timestamp


class SessionLine(Schema):
    ms: float = Field(description="Milliseconds since the session started.")
    dir: Literal["C", "S"] = Field(description="C: the client wrote it; S: the server.")
    text: str = Field(
        description="The line; message data is one summary line and AUTH secrets are ****."
    )


class SessionSummaryOut(Schema):
    id: str
    direction: Literal["inbound", "outbound"]
    client_address: str | None = Field(description="host:port of the client side.")
    server_address: str | None = Field(description="host:port of the server side.")
    helo: str | None = Field(description="The EHLO/HELO name the client gave.")
    tls_version: str | None
    tls_cipher: str | None
    auth_user: str | None = Field(description="The AUTH user name (never the password).")
    started_at: Timestamp
    ended_at: Timestamp
    duration_ms: float
    submission_ids: list[str] = Field(description="Inbound: the submissions accepted.")
    inbox_ids: list[str] = Field(
        description="Inbound: inboxes that received mail; outbound: the sending inbox."
    )
    outbound_id: str | None = Field(description="Outbound: the message relayed, when known.")
    delivery_ids: list[str] = Field(description="Outbound: the deliveries attempted.")


class SessionOut(SessionSummaryOut):
    lines: list[SessionLine]
