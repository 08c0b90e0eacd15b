"""``create_app(runtime)``: the FastAPI application, its routers, errors and access log.

The runtime is passed in (no globals); ``create_app(None)`` builds the same
routes without a runtime, which is how the OpenAPI document is generated.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import __version__
from app.api import errors
from app.api.routers import health, inboxes, keys, messages, outbound, rules, sessions, waits
from app.runtime import Runtime

log = logging.getLogger("app.http")


class AccessLog:
    """One log line per HTTP request with a request id (also sent as ``X-Request-Id``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex[:16]
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            log.info(
                "http %s %s %d ms=%.1f request_id=%s",
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - started) * 1000,
                request_id,
            )


def _operation_id(route: APIRoute) -> str:
    return route.name


def create_app(runtime: Runtime | None) -> FastAPI:
    app = FastAPI(
        title="Mailharness",
        version=__version__,
        summary="Self-hosted email test harness: SMTP sink, relay queue, REST waits.",
        generate_unique_id_function=_operation_id,
    )
    app.state.runtime = runtime
    for router in (
        health.router,
        inboxes.router,
        messages.router,
        waits.router,
        outbound.router,
        rules.router,
        keys.router,
        sessions.router,
    ):
        app.include_router(router)
    errors.install(app)
    app.add_middleware(AccessLog)
    return app


def openapi_document() -> dict[str, Any]:
    return create_app(None).openapi()
