"""Mailpit's error style for the compat routes: plain-text bodies, 400 for bad input.

``MailpitRoute`` is the route class of every compat route: it turns our
exceptions (raised by services or dependencies) and request validation
failures into Mailpit's answers (``text/plain`` message; 400 for anything the
client got wrong, 404 for unknown ids, 401 with a Basic challenge). The send
route answers JSON ``{"Error": ...}`` instead, as Mailpit does (``SendError``).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.routing import APIRoute

from app.errors import InvalidInput, MailharnessError, Unauthorized


class BadRequest(InvalidInput):
    """The request is not valid."""

    code = "bad_request"
    http_status = 400


class SendError(BadRequest):
    """The message could not be sent."""


def status_of(exc: MailharnessError) -> int:
    """Mailpit answers every client mistake with 400 (we use 422 natively)."""
    return 400 if isinstance(exc, InvalidInput) else exc.http_status


def error_response(exc: MailharnessError, *, json_body: bool = False) -> Response:
    status = status_of(exc)
    if json_body:
        return JSONResponse({"Error": exc.detail}, status_code=status)
    headers = (
        {"WWW-Authenticate": 'Basic realm="Mailharness"'} if isinstance(exc, Unauthorized) else None
    )
    return PlainTextResponse(exc.detail, status_code=status, headers=headers)


def _describe(exc: RequestValidationError) -> str:
    parts = []
    for err in list(exc.errors())[:3]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{loc or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is not valid"


class MailpitRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        json_errors = self.path.endswith("/api/v1/send")

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except MailharnessError as exc:
                return error_response(exc, json_body=json_errors or isinstance(exc, SendError))
            except RequestValidationError as exc:
                return error_response(BadRequest(_describe(exc)), json_body=json_errors)

        return route
