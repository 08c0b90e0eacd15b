"""The MailSlurp sub-application: its routes, MailSlurp's error statuses, ``//`` paths.

``create_app(runtime)`` is mounted by ``app.api.app`` at ``MOUNT``; it shares the
runtime and the native authentication. Errors keep the native body
(``{"error", "detail"}``, plus ``message`` as MailSlurp names it) with MailSlurp's
statuses: a wait that times out is 404, bad input is 400.

``CollapseSlashes`` wraps the whole application: the SDK concatenates
``Configuration.host`` and the path, so a host with a trailing slash asks for
``/compat/mailslurp//inboxes``; under ``MOUNT`` repeated slashes become one.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from app.compat.mailslurp import webhook_payloads
from app.compat.mailslurp.routes import attachments, emails, inboxes, sent, waits, webhooks
from app.errors import InvalidInput, MailharnessError, WaitTimeout
from app.runtime import Runtime

log = logging.getLogger(__name__)

MOUNT = "/compat/mailslurp"
_SLASHES = re.compile(r"/{2,}")


def _body(code: str, detail: str, status: int) -> JSONResponse:
    return JSONResponse(
        {"error": code, "detail": detail, "message": detail, "status": status}, status_code=status
    )


def _status(exc: MailharnessError) -> int:
    if isinstance(exc, WaitTimeout):
        return 404
    if isinstance(exc, InvalidInput):
        return 400
    return exc.http_status


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(MailharnessError)
    async def _mailharness(_: Request, exc: MailharnessError) -> JSONResponse:
        return _body(exc.code, exc.detail, _status(exc))

    @app.exception_handler(RequestValidationError)
    @app.exception_handler(ValidationError)
    async def _validation(
        _: Request, exc: RequestValidationError | ValidationError
    ) -> JSONResponse:
        # ValidationError: a MailSlurp option the native request schema refuses.
        parts = []
        for err in list(exc.errors())[:5]:
            loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query"))
            parts.append(f"{loc or 'request'}: {err.get('msg', 'invalid')}")
        return _body("invalid_request", "; ".join(parts) or "the request is not valid", 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "error"
        return _body("error", detail, exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, _exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _body("internal_error", "an unexpected error occurred", 500)


def create_app(runtime: Runtime | None) -> FastAPI:
    app = FastAPI(
        title="Mailharness: MailSlurp-compatible API",
        summary="The subset of MailSlurp's API that test suites use, for its official SDKs.",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    webhook_payloads.register()
    for module in (inboxes, emails, waits, sent, attachments, webhooks):
        app.include_router(module.router)
    _install_errors(app)
    return app


class CollapseSlashes:
    """Under ``prefix``, ``//`` (and longer runs) in the request path become ``/``."""

    def __init__(self, app: ASGIApp, prefix: str = MOUNT) -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path.startswith(self.prefix) and "//" in path:
                scope = dict(scope)
                scope["path"] = _SLASHES.sub("/", path)
                raw: Any = scope.get("raw_path")
                if isinstance(raw, bytes):
                    scope["raw_path"] = re.sub(rb"/{2,}", b"/", raw)
        await self.app(scope, receive, send)
