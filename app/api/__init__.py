"""The REST API (FastAPI): routers per resource, pydantic schemas, error mapping."""

from __future__ import annotations
