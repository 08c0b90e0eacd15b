"""Messages: list per inbox, search, delete by query, read, raw bytes, attachments, mark
seen, delete."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Response

from app.api.deps import CursorQ, LimitQ, MailboxDep
from app.api.schemas.common import ErrorOut, Page
from app.api.schemas.messages import DeletedOut, MessageOut, MessagePatch, MessageSummaryOut
from app.errors import NotFound

router = APIRouter(tags=["messages"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut}}


@router.get("/api/v1/inboxes/{inbox_id}/messages", responses=NOT_FOUND)
async def list_inbox_messages(
    inbox_id: str,
    mailbox: MailboxDep,
    since: Annotated[str | None, Query(description="RFC 3339 time or a message id")] = None,
    seen: bool | None = None,
    limit: LimitQ = 50,
    cursor: CursorQ = None,
) -> Page[MessageSummaryOut]:
    """An inbox's messages, newest first."""
    return await mailbox.list_messages(
        inbox_id=inbox_id, since=since, seen=seen, limit=limit, cursor=cursor
    )


QUERY_HELP = (
    'Search query: words and "phrases" (subject, names, addresses, attachment names, '
    "body; word* for a prefix), from: to: cc: bcc: reply-to: addressed: (exact address, "
    "@domain, or a local part / domain / name word), subject:, is:read is:unread, "
    "has:attachment, after: before: (YYYY-MM-DD or RFC 3339), larger: smaller: (10k, 2MB), "
    "message-id:, inbox: (id or address); -term, !term or NOT term negates. "
    "See the README's Search section."
)
QueryQ = Annotated[str | None, Query(max_length=1000, description=QUERY_HELP)]
TzQ = Annotated[
    str | None,
    Query(max_length=64, description="IANA zone for date-only after:/before: (default UTC)"),
]
BAD_QUERY: dict[int | str, dict[str, Any]] = {400: {"model": ErrorOut}, **NOT_FOUND}


@router.get("/api/v1/messages", responses=BAD_QUERY)
async def search_messages(
    mailbox: MailboxDep,
    q: QueryQ = None,
    inbox_id: str | None = None,
    submission_id: str | None = None,
    tz: TzQ = None,
    limit: LimitQ = 50,
    cursor: CursorQ = None,
) -> Page[MessageSummaryOut]:
    """Search across the caller's inboxes, newest first (400 invalid_query for a query
    that cannot be read)."""
    return await mailbox.list_messages(
        inbox_id=inbox_id, q=q, submission_id=submission_id, tz=tz, limit=limit, cursor=cursor
    )


@router.delete("/api/v1/messages", responses=BAD_QUERY)
async def delete_messages(
    mailbox: MailboxDep,
    q: QueryQ = None,
    inbox_id: str | None = None,
    submission_id: str | None = None,
    tz: TzQ = None,
) -> DeletedOut:
    """Delete the caller's messages that the query matches (within inbox_id /
    submission_id when given). An empty q needs inbox_id or submission_id (400
    otherwise: no accidental delete-all)."""
    deleted = await mailbox.delete_matching(
        q=q, inbox_id=inbox_id, submission_id=submission_id, tz=tz
    )
    return DeletedOut(deleted=deleted)


@router.get("/api/v1/messages/{message_id}", responses=NOT_FOUND)
async def get_message(message_id: str, mailbox: MailboxDep) -> MessageOut:
    """The full parsed message."""
    return await mailbox.get_message(message_id)


@router.get(
    "/api/v1/messages/{message_id}/raw",
    response_class=Response,
    responses={200: {"content": {"message/rfc822": {}}}, **NOT_FOUND},
)
async def get_raw(message_id: str, mailbox: MailboxDep) -> Response:
    """The bytes exactly as received over SMTP."""
    return Response(content=await mailbox.raw(message_id), media_type="message/rfc822")


HTML_CSP = (
    "default-src 'none'; img-src data: cid:; style-src 'unsafe-inline'; "
    "font-src data:; frame-ancestors 'self'; sandbox"
)


@router.get(
    "/api/v1/messages/{message_id}/html",
    response_class=Response,
    responses={200: {"content": {"text/html": {}}}, **NOT_FOUND},
)
async def get_html(message_id: str, mailbox: MailboxDep) -> Response:
    """The message's HTML body, served so it cannot run scripts or load anything remote
    (CSP sandbox without scripts, no network sources); 404 when it has none."""
    message = await mailbox.get_message(message_id)
    if message.html is None:
        raise NotFound(f"message {message_id} has no HTML body")
    return Response(
        content=message.html,
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": HTML_CSP, "X-Frame-Options": "SAMEORIGIN"},
    )


@router.get(
    "/api/v1/messages/{message_id}/attachments/{attachment_id}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}, **NOT_FOUND},
)
async def get_attachment(message_id: str, attachment_id: str, mailbox: MailboxDep) -> Response:
    """An attachment's decoded bytes with its content type and filename."""
    found = await mailbox.attachment(message_id, attachment_id)
    filename = found.meta.filename or f"attachment-{found.meta.index}"
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "'").replace("?", "_")
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
    return Response(
        content=found.data,
        media_type=found.meta.content_type,
        headers={"Content-Disposition": disposition},
    )


@router.patch("/api/v1/messages/{message_id}", responses=NOT_FOUND)
async def patch_message(message_id: str, patch: MessagePatch, mailbox: MailboxDep) -> MessageOut:
    """Mark a message seen or unseen."""
    return await mailbox.mark_seen(message_id, patch.seen)


@router.delete("/api/v1/messages/{message_id}", status_code=204, responses=NOT_FOUND)
async def delete_message(message_id: str, mailbox: MailboxDep) -> Response:
    """Delete one message."""
    await mailbox.delete_message(message_id)
    return Response(status_code=204)
