"""Sent mail: what an inbox sent, each recipient's delivery timeline (states, replies,
attempts, next retry), live; a small form to send a message from the inbox."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from app.api.deps import MailboxDep, OutboxDep, RuntimeDep
from app.api.schemas.delivery import SendRequest
from app.errors import InvalidInput
from app.runtime import Runtime
from app.services.mailbox import Mailbox
from app.services.outbox import Outbox
from app.web.routes.common import (
    fragment,
    read_form,
    render,
    see_other,
    stream_position,
    validation_message,
)
from app.web.templating import UI

router = APIRouter(include_in_schema=False)

PAGE = 20


def _split(value: str | None) -> list[str]:
    return [a.strip() for a in (value or "").replace(";", ",").split(",") if a.strip()]


async def _sent_page(
    request: Request,
    runtime: Runtime,
    mailbox: Mailbox,
    outbox: Outbox,
    inbox_id: str,
    *,
    cursor: str | None,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    inbox = await mailbox.get_inbox(inbox_id)
    since = await stream_position(
        runtime, tenant_id=mailbox.tenant_id, inbox_id=inbox.id, event_type="delivery.updated"
    )
    page = await outbox.list_sent(inbox.id, limit=PAGE, cursor=cursor)
    return render(
        request,
        "sent.html",
        {
            "nav": "inboxes",
            "tab": "sent",
            "inbox": inbox,
            "outbounds": page.items,
            "next_cursor": page.next_cursor,
            "error": error,
            "form": form or {},
            "since": since,
            "paged": cursor is not None,
        },
        status_code=status_code,
    )


@router.get("/inboxes/{inbox_id}/sent")
async def sent_page(
    request: Request,
    inbox_id: str,
    mailbox: MailboxDep,
    outbox: OutboxDep,
    runtime: RuntimeDep,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    """Mail sent from this inbox, newest first, with every delivery's timeline."""
    return await _sent_page(request, runtime, mailbox, outbox, inbox_id, cursor=cursor)


@router.post("/inboxes/{inbox_id}/send")
async def send(
    request: Request, inbox_id: str, mailbox: MailboxDep, outbox: OutboxDep, runtime: RuntimeDep
) -> Response:
    """Send a plain-text message from this inbox (queued like the API's send)."""
    form = await read_form(request)
    try:
        req = SendRequest(
            to=_split(form.get("to")),
            subject=form.get("subject", ""),
            text=form.get("text") or None,
        )
        await outbox.send(inbox_id, req)
    except ValidationError as exc:
        error = validation_message(exc)
    except InvalidInput as exc:
        error = exc.detail
    else:
        return see_other(f"{UI}/inboxes/{inbox_id}/sent")
    return await _sent_page(
        request,
        runtime,
        mailbox,
        outbox,
        inbox_id,
        cursor=None,
        error=error,
        form=form,
        status_code=422,
    )


@router.get("/outbound/{outbound_id}/card")
async def outbound_card(request: Request, outbound_id: str, outbox: OutboxDep) -> Response:
    """One sent message with its deliveries (the live view swaps it in on a change)."""
    outbound = await outbox.get_outbound(outbound_id)
    return fragment(request, "_outbound.html", {"o": outbound})
