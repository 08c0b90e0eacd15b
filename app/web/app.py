"""The web UI application: pages, static files, HTML error pages, page security headers.

``create_web_app(runtime)`` is a FastAPI sub-application (no OpenAPI of its own);
``mount(app, runtime)`` serves it inside the API application at ``/ui`` and its
inbox list at ``/`` too. Errors become HTML pages; a missing or wrong key (401)
sends the browser to the login page. Forms are only accepted from the UI's own
origin (``Origin`` / ``Sec-Fetch-Site``), so another site cannot drive them.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import MailharnessError, Unauthorized
from app.runtime import Runtime
from app.web.routes import auth, inboxes, messages, rules, sent, status
from app.web.routes.common import describe_errors
from app.web.templating import UI, build_templates

STATIC_DIR = Path(__file__).parent / "static"

# Pages run only our own script and styles; mail HTML is framed from the API's
# sandboxed endpoint (same origin), never inlined.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
FRAGMENT_HEADER = "x-mailharness-fragment"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class PageHeaders:
    """Gives every UI response the page CSP (unless it sets its own) and no caching
    of pages that show mail."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                if b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", PAGE_CSP.encode()))
                if b"referrer-policy" not in present:
                    # Our own requests carry their origin; other sites learn nothing.
                    headers.append((b"referrer-policy", b"same-origin"))
                if b"cache-control" not in present and not scope["path"].startswith(
                    f"{UI}/static/"
                ):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_wrapper)


class SameOriginForms:
    """Refuses state-changing requests that a browser says come from another site."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            headers = Headers(scope=scope)
            site = headers.get("sec-fetch-site")
            origin = headers.get("origin")
            if site is not None:  # every current browser sends it
                foreign = site not in ("same-origin", "none")
            elif origin is not None:
                foreign = origin == "null" or urlsplit(origin).netloc != headers.get("host", "")
            else:  # not a browser (curl, scripts): nothing to forge
                foreign = False
            if foreign:
                response = Response("cross-site form refused", status_code=403)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _install_errors(web: FastAPI) -> None:
    templates = web.state.templates

    def page(request: Request, status: int, title: str, detail: str) -> Response:
        if request.headers.get(FRAGMENT_HEADER):
            return Response(detail, status_code=status, media_type="text/plain")
        return templates.TemplateResponse(  # type: ignore[no-any-return]
            request,
            "error.html",
            {"title": title, "detail": detail, "status": status},
            status_code=status,
        )

    @web.exception_handler(Unauthorized)
    async def _unauthorized(request: Request, exc: Unauthorized) -> Response:
        if request.headers.get(FRAGMENT_HEADER) or request.method not in SAFE_METHODS:
            return Response(exc.detail, status_code=401, media_type="text/plain")
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{UI}/login?next={quote(target, safe='')}", status_code=303)

    @web.exception_handler(MailharnessError)
    async def _mailharness(request: Request, exc: MailharnessError) -> Response:
        titles = {404: "Not found", 409: "Conflict", 422: "Not valid", 400: "Not valid"}
        return page(request, exc.http_status, titles.get(exc.http_status, "Error"), exc.detail)

    @web.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return page(request, 422, "Not valid", describe_errors(list(exc.errors())))

    @web.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else "error"
        return page(request, exc.status_code, detail, f"{request.url.path}: {detail}")


def create_web_app(runtime: Runtime | None) -> FastAPI:
    web = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    web.state.runtime = runtime
    web.state.templates = build_templates()
    web.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in (
        auth.router,
        inboxes.router,
        messages.router,
        sent.router,
        rules.router,
        status.router,
    ):
        web.include_router(router)
    _install_errors(web)
    web.add_middleware(SameOriginForms)
    web.add_middleware(PageHeaders)
    return web


def mount(app: FastAPI, runtime: Runtime | None) -> None:
    """Serve the UI from ``app``: every page under ``/ui``, the inbox list at ``/``."""
    web = create_web_app(runtime)
    app.mount(UI, web)
    app.router.routes.append(Route("/", web, include_in_schema=False))
