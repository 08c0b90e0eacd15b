"""Login and logout: with API keys configured, the UI asks for a key and keeps it in an
HttpOnly, SameSite=Strict cookie that the tenant dependency accepts (never logged)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.api.deps import KEY_COOKIE, RuntimeDep
from app.web.routes.common import local_path, read_form, render, see_other
from app.web.templating import UI

router = APIRouter(include_in_schema=False)

COOKIE_MAX_AGE = 7 * 86400


@router.get("/login")
async def login_form(
    request: Request,
    runtime: RuntimeDep,
    target: Annotated[str | None, Query(alias="next")] = None,
) -> Response:
    """The key form (in open mode there is nothing to log in to)."""
    if not await runtime.keys().keyed_mode():
        return see_other(local_path(target))
    return render(request, "login.html", {"next": local_path(target), "error": None})


@router.post("/login")
async def login(request: Request, runtime: RuntimeDep) -> Response:
    form = await read_form(request)
    key = form.get("key", "")
    target = local_path(form.get("next"))
    keys = runtime.keys()
    valid = bool(key) and (keys.is_admin(key) or await keys.tenant_for(key) is not None)
    if not valid:
        return render(
            request,
            "login.html",
            {"next": target, "error": "That key is unknown or revoked."},
            status_code=401,
        )
    response = see_other(target)
    response.set_cookie(
        KEY_COOKIE,
        key,
        max_age=COOKIE_MAX_AGE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
async def logout() -> Response:
    response = see_other(f"{UI}/login")
    response.delete_cookie(KEY_COOKIE, path="/", httponly=True, samesite="strict")
    return response
