"""Fault rule schemas."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from app.api.schemas.common import Schema, Timestamp

_ENHANCED = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")


class RuleMatch(Schema):
    recipient: str | None = Field(
        default=None, max_length=320, description="Glob, case-insensitive"
    )
    sender: str | None = Field(default=None, max_length=320, description="Glob, case-insensitive")
    inbox_id: str | None = None


class RuleReply(Schema):
    code: int = Field(ge=200, le=599)
    enhanced: str | None = Field(default=None, max_length=16)
    text: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _check(self) -> RuleReply:
        if self.enhanced is not None:
            if not _ENHANCED.match(self.enhanced):
                raise ValueError("enhanced must look like 4.7.1 (RFC 3463)")
            if self.enhanced[0] != str(self.code)[0]:
                raise ValueError("enhanced code class must match the reply code class")
        if self.text is not None and any(c in self.text for c in "\r\n\x00"):
            raise ValueError("text must be one line")
        return self


class RuleCreate(Schema):
    match: RuleMatch = Field(default_factory=RuleMatch)
    stage: Literal["connect", "mail", "rcpt", "data"]
    reply: RuleReply | None = None
    action: Literal["reply", "disconnect"] = "reply"
    delay_ms: int = Field(default=0, ge=0, le=600_000)
    times: int | None = Field(default=None, ge=1)
    probability: float | None = Field(default=None, ge=0, le=1)
    seed: int | None = Field(default=None, ge=-(2**62), le=2**62)

    @model_validator(mode="after")
    def _check(self) -> RuleCreate:
        if self.action == "reply" and self.reply is None and self.delay_ms == 0:
            raise ValueError("a rule needs a reply, a delay_ms or action=disconnect")
        if self.stage in ("connect", "mail") and (self.match.recipient or self.match.inbox_id):
            raise ValueError(f"recipients are not known yet at the {self.stage} stage")
        if self.stage == "connect" and self.match.sender:
            raise ValueError("the sender is not known yet at the connect stage")
        return self


class RuleOut(Schema):
    id: str
    match: RuleMatch
    stage: str
    reply: RuleReply | None
    action: str
    delay_ms: int
    times: int | None
    probability: float | None
    seed: int | None
    hits: int
    created_at: Timestamp
