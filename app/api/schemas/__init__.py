"""Pydantic request/response schemas of the public contract (never ORM models)."""

from __future__ import annotations
