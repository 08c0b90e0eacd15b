"""Inbox pages: the list (create in one click, tags, expiry, delete), one inbox's live
message list, the rows fragment the live view fetches, and search across inboxes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from app.api.deps import MailboxDep, RuntimeDep
from app.api.schemas.inboxes import InboxCreate, InboxOut
from app.errors import Conflict, InvalidInput, NotFound
from app.services.mailbox import Mailbox
from app.web.routes.common import (
    fragment,
    optional_int,
    read_form,
    render,
    see_other,
    stream_position,
    validation_message,
)
from app.web.templating import UI

router = APIRouter(include_in_schema=False)

PAGE = 50
# Choices of the create form's expiry select (seconds; "" = never).
EXPIRY_CHOICES = [
    ("", "never"),
    ("600", "10 minutes"),
    ("3600", "1 hour"),
    ("86400", "1 day"),
    ("604800", "7 days"),
]
TagQ = Annotated[str | None, Query(max_length=100)]
CursorQ = Annotated[str | None, Query(max_length=2000)]


async def _index(
    request: Request,
    mailbox: Mailbox,
    *,
    tag: str | None,
    cursor: str | None,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    page = await mailbox.list_inboxes(tag=tag, limit=PAGE, cursor=cursor)
    tags = sorted({t for inbox in page.items for t in inbox.tags})
    return render(
        request,
        "index.html",
        {
            "nav": "inboxes",
            "inboxes": page.items,
            "next_cursor": page.next_cursor,
            "tag": tag,
            "tags": tags,
            "error": error,
            "form": form or {},
            "expiry_choices": EXPIRY_CHOICES,
        },
        status_code=status_code,
    )


@router.get("/")
async def index(
    request: Request, mailbox: MailboxDep, tag: TagQ = None, cursor: CursorQ = None
) -> Response:
    """The inbox list."""
    return await _index(request, mailbox, tag=tag or None, cursor=cursor)


@router.post("/inboxes")
async def create_inbox(request: Request, mailbox: MailboxDep) -> Response:
    """One click makes a random address; the optional fields choose one."""
    form = await read_form(request)
    try:
        data = InboxCreate(
            address=form.get("address") or None,
            name=form.get("name") or None,
            tags=[t.strip() for t in form.get("tags", "").split(",") if t.strip()],
            expires_in=optional_int(form.get("expires_in"), "expires_in"),
        )
        inbox = await mailbox.create_inbox(data)
    except ValidationError as exc:
        error = validation_message(exc)
    except (InvalidInput, Conflict) as exc:
        error = exc.detail
    else:
        return see_other(f"{UI}/inboxes/{inbox.id}?created=1")
    return await _index(
        request, mailbox, tag=None, cursor=None, error=error, form=form, status_code=422
    )


async def _unread(mailbox: Mailbox, inbox_id: str) -> int:
    return len(
        (await mailbox.list_messages(inbox_id=inbox_id, seen=False, limit=100, cursor=None)).items
    )


@router.get("/inboxes/{inbox_id}")
async def inbox_page(
    request: Request,
    inbox_id: str,
    mailbox: MailboxDep,
    runtime: RuntimeDep,
    cursor: CursorQ = None,
    created: bool = False,
) -> Response:
    """One inbox's messages, newest first; new mail appears live."""
    inbox = await mailbox.get_inbox(inbox_id)
    since = await stream_position(
        runtime, tenant_id=mailbox.tenant_id, inbox_id=inbox.id, event_type="message.received"
    )
    page = await mailbox.list_messages(inbox_id=inbox.id, limit=PAGE, cursor=cursor)
    return render(
        request,
        "inbox.html",
        {
            "nav": "inboxes",
            "tab": "messages",
            "inbox": inbox,
            "messages": page.items,
            "next_cursor": page.next_cursor,
            "paged": cursor is not None,
            "unread": await _unread(mailbox, inbox.id),
            "created": created,
            "since": since,
        },
    )


@router.get("/inboxes/{inbox_id}/rows")
async def inbox_rows(
    request: Request,
    inbox_id: str,
    mailbox: MailboxDep,
    since: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """Rows of the messages after ``since`` (a message id), newest first: what the live
    view inserts when an event arrives or its stream (re)connects."""
    page = await mailbox.list_messages(inbox_id=inbox_id, since=since, limit=PAGE, cursor=None)
    return fragment(request, "_rows.html", {"messages": page.items, "show_inbox": False})


@router.post("/inboxes/{inbox_id}/delete")
async def delete_inbox(inbox_id: str, mailbox: MailboxDep) -> Response:
    await mailbox.delete_inbox(inbox_id)
    return see_other(f"{UI}/")


@router.post("/inboxes/{inbox_id}/empty")
async def empty_inbox(inbox_id: str, mailbox: MailboxDep) -> Response:
    await mailbox.empty_inbox(inbox_id)
    return see_other(f"{UI}/inboxes/{inbox_id}")


async def inbox_map(mailbox: Mailbox, inbox_ids: set[str]) -> dict[str, InboxOut]:
    """The inboxes of these ids (for showing addresses next to search results)."""
    found: dict[str, InboxOut] = {}
    for inbox_id in inbox_ids:
        try:
            found[inbox_id] = await mailbox.get_inbox(inbox_id)
        except NotFound:
            continue
    return found


@router.get("/search")
async def search(
    request: Request,
    mailbox: MailboxDep,
    q: Annotated[str, Query(max_length=1000)] = "",
    cursor: CursorQ = None,
) -> Response:
    """Messages across the caller's inboxes whose subject, addresses or body have the words."""
    page = await mailbox.list_messages(inbox_id=None, q=q or None, limit=PAGE, cursor=cursor)
    inboxes = await inbox_map(mailbox, {m.inbox_id for m in page.items})
    return render(
        request,
        "search.html",
        {
            "nav": "search",
            "q": q,
            "messages": page.items,
            "inboxes": inboxes,
            "next_cursor": page.next_cursor,
        },
    )
