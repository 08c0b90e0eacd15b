"""Long-poll waits: ``/wait`` returns the first matches, ``/quiet`` asserts none arrive."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api import views
from app.api.deps import MailboxDep, RuntimeDep, WaitSlot
from app.api.schemas.common import ErrorOut, Items
from app.api.schemas.messages import MessageOut, MessagesConflictOut
from app.events.waiters import MessageFilter

router = APIRouter(prefix="/api/v1/inboxes/{inbox_id}", tags=["waits"])

Timeout = Annotated[
    float | None, Query(ge=0, description="Seconds (default 30, capped at the server's maximum)")
]
Text = Annotated[str | None, Query(max_length=1000)]
HeaderQ = Annotated[list[str] | None, Query(description="'Name: value' (repeatable)")]


def _filter(
    subject: str | None,
    from_: str | None,
    to: str | None,
    body: str | None,
    header: list[str] | None,
    seen: bool | None,
) -> MessageFilter:
    return MessageFilter(
        subject=subject,
        from_=from_,
        to=to,
        body=body,
        headers=tuple(MessageFilter.parse_header(h) for h in header or ()),
        seen=seen,
    )


@router.get(
    "/wait",
    responses={
        404: {"model": ErrorOut},
        408: {"model": ErrorOut},
        422: {"model": ErrorOut},
        429: {"model": ErrorOut},
    },
    dependencies=[WaitSlot],
)
async def wait_for_messages(
    inbox_id: str,
    runtime: RuntimeDep,
    mailbox: MailboxDep,
    timeout: Timeout = None,
    count: Annotated[int, Query(ge=1, le=500)] = 1,
    since: Annotated[str | None, Query(description="RFC 3339 time or a message id")] = None,
    subject: Text = None,
    from_: Annotated[str | None, Query(alias="from", max_length=1000)] = None,
    to: Text = None,
    body: Text = None,
    header: HeaderQ = None,
    seen: bool | None = None,
) -> Items[MessageOut]:
    """Wait until ``count`` matching messages exist (oldest first); 408 on timeout."""
    inbox_id = await mailbox.require_inbox(inbox_id)
    found = await runtime.waits.wait(
        tenant_id=mailbox.tenant_id,
        inbox_id=inbox_id,
        flt=_filter(subject, from_, to, body, header, seen),
        count=count,
        since=await mailbox.resolve_since(since),
        timeout=runtime.settings.wait_default_timeout if timeout is None else timeout,
    )
    return Items[MessageOut](items=[views.message_out(m) for m in found])


@router.get(
    "/quiet",
    responses={
        404: {"model": ErrorOut},
        409: {"model": MessagesConflictOut},
        429: {"model": ErrorOut},
    },
    dependencies=[WaitSlot],
)
async def wait_for_quiet(
    inbox_id: str,
    runtime: RuntimeDep,
    mailbox: MailboxDep,
    timeout: Timeout = None,
    since: Annotated[str | None, Query(description="RFC 3339 time or a message id")] = None,
    subject: Text = None,
    from_: Annotated[str | None, Query(alias="from", max_length=1000)] = None,
    to: Text = None,
    body: Text = None,
    header: HeaderQ = None,
    seen: bool | None = None,
) -> Items[MessageOut]:
    """200 with no items when nothing matching arrives during ``timeout``; 409 with the
    offending messages as soon as one does."""
    inbox_id = await mailbox.require_inbox(inbox_id)
    await runtime.waits.quiet(
        tenant_id=mailbox.tenant_id,
        inbox_id=inbox_id,
        flt=_filter(subject, from_, to, body, header, seen),
        since=await mailbox.resolve_since(since) if since else None,
        timeout=runtime.settings.wait_default_timeout if timeout is None else timeout,
    )
    return Items[MessageOut](items=[])
