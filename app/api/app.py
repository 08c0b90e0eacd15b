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
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import __version__
from app.api import errors
from app.api.limits import ApiLimits, BodyLimit
from app.api.routers import (
    events,
    health,
    inboxes,
    keys,
    messages,
    outbound,
    rules,
    sessions,
    waits,
    webhooks,
)
from app.api.schemas.common import ErrorOut
from app.compat import mailslurp
from app.compat.mailpit import build_router as mailpit_router
from app.runtime import Runtime
from app.web import mount as mount_web_ui

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


# RFC-style defaults for a JSON API that also serves received mail's HTML: nothing of
# ours runs scripts, so the strictest policy fits every response unless a route
# sets its own (the message HTML endpoint adds a sandbox).
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
]


class SecurityHeaders:
    """Adds the security headers to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in SECURITY_HEADERS if n not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_wrapper)


# What any /api call may answer besides its own codes: a malformed cursor or body,
# a missing key, an unknown id (also in a filter), a body over the limit, a validation
# error, the rate limit, the store.
API_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 404, 413, 422, 429, 503)
}


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
        events.router,
        webhooks.router,
    ):
        app.include_router(router, responses=None if router is health.router else API_ERRORS)
    app.mount(mailslurp.MOUNT, mailslurp.create_app(runtime))
    app.include_router(mailpit_router())
    errors.install(app)
    mount_web_ui(app, runtime)
    if runtime is not None and runtime.settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=runtime.settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "Last-Event-ID"],
        )
    if runtime is not None:
        app.state.limits = ApiLimits.from_settings(runtime.settings)
        app.add_middleware(BodyLimit, max_size=runtime.settings.api_max_body_size)
    app.add_middleware(mailslurp.CollapseSlashes)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(AccessLog)
    return app


def openapi_document() -> dict[str, Any]:
    return create_app(None).openapi()
