"""``build_router()``: every Mailpit-compatible route under ``/compat/mailpit``."""

from __future__ import annotations

from fastapi import APIRouter

from app.compat.mailpit import chaos, message, messages, send
from app.compat.mailpit.info import build_info_router

PREFIX = "/compat/mailpit"


def build_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, include_in_schema=False)
    for part in (messages.router, message.router, send.router, chaos.router, build_info_router()):
        router.include_router(part)
    return router
