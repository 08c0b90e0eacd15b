"""Helpers shared by the UI's routes: rendering a page, reading a form, safe redirects."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from app.api.deps import KEY_COOKIE
from app.errors import InvalidInput
from app.runtime import Runtime
from app.services.feed import Feed
from app.web.templating import UI

MAX_FORM_BYTES = 256 * 1024


def render(
    request: Request, template: str, context: Mapping[str, Any], *, status_code: int = 200
) -> Response:
    templates = request.app.state.templates
    values = {"logged_in": KEY_COOKIE in request.cookies, **context}
    response: Response = templates.TemplateResponse(
        request, template, values, status_code=status_code
    )
    return response


def fragment(request: Request, template: str, context: Mapping[str, Any]) -> Response:
    """A piece of a page for the live updates (no layout around it)."""
    return render(request, template, context)


def see_other(path: str) -> RedirectResponse:
    """Post/redirect/get: after a form, the browser GETs the page that shows the result."""
    return RedirectResponse(path, status_code=303)


def local_path(target: str | None, default: str = f"{UI}/") -> str:
    """``target`` if it is a path on this site, else ``default`` (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (the UI's forms are small)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise InvalidInput("the form is too large")
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise InvalidInput("the form is not UTF-8") from None
    return {k: v.strip() for k, v in parse_qsl(text, keep_blank_values=True)}


def describe_errors(errors: Sequence[Any]) -> str:
    parts = []
    for err in list(errors)[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc or 'form'}: {msg}")
    return "; ".join(parts) or "the form is not valid"


def validation_message(exc: ValidationError) -> str:
    return describe_errors(exc.errors())


def optional_int(value: str | None, field: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"{field}: a whole number is expected") from None


def optional_float(value: str | None, field: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        raise InvalidInput(f"{field}: a number is expected") from None


async def stream_position(
    runtime: Runtime, *, tenant_id: str, inbox_id: str, event_type: str
) -> str:
    """The event stream's position before a page reads what it shows: the live view
    resumes from it (``/api/v1/events?since=``), so nothing falls between the two."""
    feed = Feed(db=runtime.db, tenant_id=tenant_id, inbox_id=inbox_id, types=(event_type,))
    return (await feed.head()).encode()
