"""Shared schema pieces: the contract's timestamp format, error body, list envelope."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, PlainSerializer

T = TypeVar("T")


def format_time(value: datetime) -> str:
    """RFC 3339 UTC with microseconds and ``Z`` (``2026-11-28T17:05:29.123456Z``)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


Timestamp = Annotated[datetime, PlainSerializer(format_time, return_type=str)]


class Schema(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class ErrorOut(Schema):
    error: str
    detail: str


class Page(Schema, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class Items(Schema, Generic[T]):
    items: list[T]
