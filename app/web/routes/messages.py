"""A message: rendered HTML (sandboxed frame), text, headers, raw source, attachments,
links and codes, and the SMTP session that brought it; mark unread and delete.

The HTML is served by ``/ui/messages/{id}/html`` under a CSP sandbox without scripts
and without network sources; inline ``cid:`` images are embedded as data URLs, and
remote images load only when the reader asks (``?images=remote``).
"""

from __future__ import annotations

import base64
import re
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.api.deps import MailboxDep, SessionsDep
from app.api.schemas.messages import MessageOut
from app.api.schemas.sessions import SessionOut
from app.errors import NotFound
from app.services.mailbox import Mailbox
from app.services.sessions import Sessions
from app.web.routes.common import read_form, render, see_other
from app.web.templating import UI

router = APIRouter(include_in_schema=False)

RAW_SHOWN = 512 * 1024
INLINE_IMAGES_MAX = 5 * 1024 * 1024
SESSIONS_SEARCHED = 200
ImagesQ = Annotated[Literal["blocked", "remote"], Query()]

_DOCTYPE = re.compile(rb"^\s*<!doctype[^>]*>", re.IGNORECASE)
# An <img>, a background attribute or a CSS url() that would fetch from the network.
_REMOTE_IMAGE = re.compile(
    r"""(<img[^>]+src|background)\s*=\s*["']?\s*(https?:)?//|url\(\s*["']?\s*(https?:)?//""",
    re.IGNORECASE,
)
_CID = re.compile(r"""cid:([^"'\s)>]+)""", re.IGNORECASE)


def html_csp(*, remote_images: bool) -> str:
    """No scripts, nothing fetched but (when asked) images; links may open a new tab."""
    images = "data:" + (" http: https:" if remote_images else "")
    return (
        f"default-src 'none'; img-src {images}; style-src 'unsafe-inline'; font-src data:; "
        "frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox"
    )


def _with_base(html: bytes) -> bytes:
    """Links in the mail open in a new tab (after any doctype, to keep standards mode)."""
    base = b'<base target="_blank">'
    found = _DOCTYPE.match(html)
    if found is None:
        return base + html
    return html[: found.end()] + base + html[found.end() :]


async def _inline_images(mailbox: Mailbox, message: MessageOut, html: str) -> str:
    """``cid:`` references to the message's own parts become data URLs."""
    by_cid = {a.content_id.strip("<>").lower(): a for a in message.attachments if a.content_id}
    budget = INLINE_IMAGES_MAX
    urls: dict[str, str] = {}
    for cid in {m.group(1).lower() for m in _CID.finditer(html)}:
        meta = by_cid.get(cid)
        if meta is None or not meta.content_type.startswith("image/") or meta.size > budget:
            continue
        found = await mailbox.attachment(message.id, meta.id)
        budget -= len(found.data)
        urls[cid] = f"data:{meta.content_type};base64,{base64.b64encode(found.data).decode()}"
    if not urls:
        return html
    return _CID.sub(lambda m: urls.get(m.group(1).lower(), m.group(0)), html)


async def _transcript(sessions: Sessions, message: MessageOut) -> SessionOut | None:
    """The inbound SMTP session that delivered this message, if it was recorded."""
    page = await sessions.list(
        inbox_id=message.inbox_id, direction="inbound", limit=SESSIONS_SEARCHED, cursor=None
    )
    for summary in page.items:
        if message.submission_id in summary.submission_ids:
            return await sessions.get(summary.id)
    return None


@router.get("/messages/{message_id}")
async def message_page(
    request: Request,
    message_id: str,
    mailbox: MailboxDep,
    sessions: SessionsDep,
    images: ImagesQ = "blocked",
) -> Response:
    """Everything about one message; opening it marks it read."""
    message = await mailbox.get_message(message_id)
    if not message.seen:
        message = await mailbox.mark_seen(message.id, True)
    inbox = await mailbox.get_inbox(message.inbox_id)
    raw = await mailbox.raw(message.id)
    remote_images = message.html is not None and bool(_REMOTE_IMAGE.search(message.html))
    return render(
        request,
        "message.html",
        {
            "nav": "inboxes",
            "inbox": inbox,
            "message": message,
            "raw": raw[:RAW_SHOWN].decode("utf-8", errors="replace"),
            "raw_size": len(raw),
            "raw_truncated": len(raw) > RAW_SHOWN,
            "images": images,
            "has_remote_images": remote_images,
            "session": await _transcript(sessions, message),
        },
    )


@router.get("/messages/{message_id}/html")
async def message_html(
    message_id: str, mailbox: MailboxDep, images: ImagesQ = "blocked"
) -> Response:
    """The mail's HTML for the sandboxed frame of the message page."""
    message = await mailbox.get_message(message_id)
    if message.html is None:
        raise NotFound(f"message {message_id} has no HTML body")
    html = await _inline_images(mailbox, message, message.html)
    return Response(
        content=_with_base(html.encode()),
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": html_csp(remote_images=images == "remote"),
            "X-Frame-Options": "SAMEORIGIN",
            "Cache-Control": "no-store",
        },
    )


@router.post("/messages/{message_id}/seen")
async def mark(request: Request, message_id: str, mailbox: MailboxDep) -> Response:
    """Mark read (``seen=1``) or unread (``seen=0``); back to the inbox."""
    form = await read_form(request)
    message = await mailbox.mark_seen(message_id, form.get("seen") == "1")
    return see_other(f"{UI}/inboxes/{message.inbox_id}")


@router.post("/messages/{message_id}/delete")
async def delete(message_id: str, mailbox: MailboxDep) -> Response:
    message = await mailbox.get_message(message_id)
    await mailbox.delete_message(message.id)
    return see_other(f"{UI}/inboxes/{message.inbox_id}")
