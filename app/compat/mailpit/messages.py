"""The mailbox as a whole: list, search, mark read/unread, delete (by ids or search).

``DELETE /api/v1/messages`` deletes everything only when asked explicitly
(``{"IDs": []}``): an empty, unreadable or id-less body answers 400, unlike
Mailpit, which deletes all messages when it cannot read the body.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from app.compat.mailpit import shapes
from app.compat.mailpit.body import read_body
from app.compat.mailpit.deps import MailboxDep
from app.compat.mailpit.errors import BadRequest, MailpitRoute
from app.compat.mailpit.paging import start_limit
from app.compat.mailpit.search import to_query
from app.services.mailbox import Mailbox

router = APIRouter(route_class=MailpitRoute)
Text = Annotated[str | None, Query()]


def ok() -> PlainTextResponse:
    return PlainTextResponse("ok")


async def _page(
    mailbox: Mailbox, q: str | None, start: str | None, limit: str | None, tz: str | None
) -> JSONResponse:
    offset, count = start_limit(start, limit)
    window = await mailbox.window(q=q, offset=offset, limit=count, tz=tz)
    return JSONResponse(
        shapes.messages_summary(
            window.items,
            total=window.total,
            unread=window.unread,
            matches=window.matches,
            matches_unread=window.matches_unread,
            start=offset,
        )
    )


@router.get("/api/v1/messages")
async def list_messages(
    mailbox: MailboxDep, start: Text = None, limit: Text = None
) -> JSONResponse:
    """Every message of every inbox, newest first (``start`` offset, ``limit``)."""
    return await _page(mailbox, None, start, limit, None)


@router.get("/api/v1/search")
async def search_messages(
    mailbox: MailboxDep,
    query: Text = None,
    start: Text = None,
    limit: Text = None,
    tz: Text = None,
) -> JSONResponse:
    """Messages matching Mailpit's search syntax, newest first (``tz``: the zone of
    date-only ``before:``/``after:``)."""
    if query is None or not query.strip():
        raise BadRequest("query: a search query is required")
    return await _page(mailbox, to_query(query), start, limit, tz)


@router.delete("/api/v1/search")
async def delete_search(
    mailbox: MailboxDep, query: Text = None, tz: Text = None
) -> PlainTextResponse:
    """Delete the messages matching the search (a query is required)."""
    if query is None or not query.strip():
        raise BadRequest("query: a search query is required")
    await mailbox.delete_many(ids=None, q=to_query(query), tz=tz)
    return ok()


@router.put("/api/v1/messages")
async def set_read(request: Request, mailbox: MailboxDep, tz: Text = None) -> PlainTextResponse:
    """``{IDs?, Read, Search?}``: mark those ids, or the search's matches, or (neither)
    every message, read or unread."""
    body = await read_body(request)
    if body is None:
        raise BadRequest("the request body is empty (expected {IDs?, Read, Search?})")
    ids = body.texts("IDs")
    search = body.text("Search")
    if ids and search.strip():
        raise BadRequest("give IDs or Search, not both")
    await mailbox.mark_seen_many(
        ids=ids or None, q=to_query(search), seen=body.flag("Read", default=False), tz=tz
    )
    return ok()


@router.delete("/api/v1/messages")
async def delete_messages(request: Request, mailbox: MailboxDep) -> PlainTextResponse:
    """``{IDs: [...]}`` deletes those messages; ``{IDs: []}`` deletes every message."""
    body = await read_body(request)
    if body is None:
        raise BadRequest(
            'the request body is empty: send {"IDs": [...]} (an empty list deletes everything)'
        )
    ids = body.texts("IDs")
    if ids is None:
        raise BadRequest('IDs is missing: send {"IDs": [...]} (an empty list deletes everything)')
    await mailbox.delete_many(ids=ids or None, q=None)
    return ok()
