"""One message: summary (marks it read), headers, raw source, attachment parts, release,
and the ``/view/{ID}.html|.txt`` renderings. ``latest`` (optionally narrowed with
``?query=``) stands for the newest message everywhere an id is taken."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from app.api.routers.messages import HTML_CSP
from app.compat.mailpit import shapes
from app.compat.mailpit.body import read_body
from app.compat.mailpit.deps import MailboxDep, OutboxDep
from app.compat.mailpit.errors import BadRequest, MailpitRoute
from app.compat.mailpit.search import to_query
from app.errors import NotFound
from app.services.mailbox import Mailbox

router = APIRouter(route_class=MailpitRoute)


async def resolve(mailbox: Mailbox, message_id: str, request: Request) -> str:
    """Our message id for ``{ID}``: the id itself, or for ``latest`` the newest
    message (matching ``?query=``, with ``tz`` for its dates)."""
    if message_id == "latest":
        params = request.query_params
        return (await mailbox.latest(to_query(params.get("query")), params.get("tz"))).id
    return message_id


def _disposition(kind: str, filename: str) -> str:
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "'").replace("?", "_")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


@router.get("/api/v1/message/{message_id}")
async def get_message(message_id: str, mailbox: MailboxDep, request: Request) -> JSONResponse:
    """The message with bodies and attachment lists; opening it marks it read."""
    resolved = await resolve(mailbox, message_id, request)
    await mailbox.mark_seen_many(ids=[resolved], q=None, seen=True)  # every copy
    return JSONResponse(shapes.message(await mailbox.get_message(resolved)))


@router.get("/api/v1/message/{message_id}/headers")
async def get_headers(message_id: str, mailbox: MailboxDep, request: Request) -> JSONResponse:
    """``{"Header-Name": ["value", ...]}``."""
    found = await mailbox.get_message(await resolve(mailbox, message_id, request))
    inbox = await mailbox.get_inbox(found.inbox_id)
    return JSONResponse(shapes.headers(found, inbox.address))


@router.get("/api/v1/message/{message_id}/raw")
async def get_raw(
    message_id: str, mailbox: MailboxDep, request: Request, dl: str | None = None
) -> Response:
    """The source exactly as received; ``dl=1`` makes it a download."""
    resolved = await resolve(mailbox, message_id, request)
    raw = await mailbox.raw(resolved)
    headers = {"Content-Disposition": _disposition("attachment", f"{resolved}.eml")} if dl else None
    return Response(raw, media_type="text/plain; charset=utf-8", headers=headers)


@router.get("/api/v1/message/{message_id}/part/{part_id}")
async def get_part(
    message_id: str, part_id: str, mailbox: MailboxDep, request: Request
) -> Response:
    """An attachment's decoded bytes with its own content type (``PartID`` from the
    message's ``Attachments``/``Inline``)."""
    found = await mailbox.attachment(await resolve(mailbox, message_id, request), part_id)
    filename = found.meta.filename or f"part-{found.meta.index}"
    return Response(
        found.data,
        media_type=found.meta.content_type,
        headers={"Content-Disposition": _disposition("inline", filename)},
    )


@router.post("/api/v1/message/{message_id}/release")
async def release(
    message_id: str, request: Request, mailbox: MailboxDep, outbox: OutboxDep
) -> PlainTextResponse:
    """``{To: [addresses]}``: queue the message, unchanged, for delivery to them (our
    delivery queue: it gets delivery state, retries and a timeline)."""
    body = await read_body(request)
    to = body.texts("To") if body is not None else None
    if not to:
        raise BadRequest("To: at least one recipient address is required")
    await outbox.release(await resolve(mailbox, message_id, request), to)
    return PlainTextResponse("ok")


@router.get("/view/{message_id}.html")
async def view_html(message_id: str, mailbox: MailboxDep, request: Request) -> Response:
    """The HTML part, sandboxed like the native HTML endpoint; 404 when there is none."""
    found = await mailbox.get_message(await resolve(mailbox, message_id, request))
    if found.html is None:
        raise NotFound(f"message {found.id} has no HTML part")
    return Response(
        found.html,
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": HTML_CSP, "X-Frame-Options": "SAMEORIGIN"},
    )


@router.get("/view/{message_id}.txt")
async def view_text(message_id: str, mailbox: MailboxDep, request: Request) -> Response:
    """The text part."""
    found = await mailbox.get_message(await resolve(mailbox, message_id, request))
    return PlainTextResponse(found.text or "")
