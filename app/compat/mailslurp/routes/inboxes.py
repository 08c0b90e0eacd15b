"""InboxController: create (query or body options), get, list, page, delete, emails of an
inbox, their count, and sending from an inbox (plain and confirmed)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query, Response, status

from app.api.schemas.inboxes import InboxCreate
from app.api.views import message_out
from app.compat.mailslurp import mapping, wire
from app.compat.mailslurp.deps import (
    PageQ,
    SizeQ,
    Slurp,
    SlurpDep,
    SortQ,
    TimeQ,
    part,
    utc,
)
from app.compat.mailslurp.matching import slurp_filter
from app.compat.mailslurp.routes.common import inbox_dtos, send, sent_dto
from app.compat.mailslurp.routes.waits import latest
from app.compat.mailslurp.store import InboxExtra, Slice
from app.errors import InvalidInput, NotFound
from app.events.waiters import Since
from app.ingest import random_local_part
from app.store.types import utcnow

router = APIRouter(tags=["inbox"])

InboxType = Literal["HTTP_INBOX", "SMTP_INBOX"]


async def _create(slurp: Slurp, opts: wire.CreateInboxDto) -> wire.InboxDto:
    address = opts.email_address
    if address is None and opts.prefix:
        address = f"{opts.prefix}-{random_local_part()}"
    expires_in: int | None = None
    if opts.expires_in is not None:
        expires_in = max(1, math.ceil(opts.expires_in / 1000))
    elif opts.expires_at is not None:
        left = (utc(opts.expires_at) or utcnow()) - utcnow()
        if left.total_seconds() <= 0:
            raise InvalidInput("expiresAt: the time has passed")
        expires_in = max(1, math.ceil(left.total_seconds()))
    inbox = await slurp.mailbox.create_inbox(
        InboxCreate(address=address, name=opts.name, tags=opts.tags, expires_in=expires_in)
    )
    extra = InboxExtra(description=opts.description, favourite=bool(opts.favourite))
    if extra != InboxExtra():
        await slurp.store.set_extra(inbox.id, extra)
    return mapping.inbox_dto(inbox, extra, slurp.user_id)


@router.post("/inboxes", status_code=status.HTTP_201_CREATED)
async def create_inbox(
    slurp: SlurpDep,
    email_address: Annotated[str | None, Query(alias="emailAddress", max_length=320)] = None,
    name: Annotated[str | None, Query(max_length=200)] = None,
    description: Annotated[str | None, Query(max_length=2000)] = None,
    tags: Annotated[list[str] | None, Query()] = None,
    favourite: bool | None = None,
    expires_at: Annotated[datetime | None, Query(alias="expiresAt")] = None,
    expires_in: Annotated[int | None, Query(alias="expiresIn", gt=0)] = None,
    inbox_type: Annotated[InboxType | None, Query(alias="inboxType")] = None,
    prefix: Annotated[str | None, Query(max_length=64)] = None,
) -> wire.InboxDto:
    """Create an inbox from query options (the SDK sends no body)."""
    return await _create(
        slurp,
        wire.CreateInboxDto(
            email_address=email_address,
            name=name,
            description=description,
            tags=tags or [],
            favourite=favourite,
            expires_at=expires_at,
            expires_in=expires_in,
            inbox_type=inbox_type,
            prefix=prefix,
        ),
    )


@router.post("/inboxes/withDefaults", status_code=status.HTTP_201_CREATED)
async def create_inbox_with_defaults(slurp: SlurpDep) -> wire.InboxDto:
    return await _create(slurp, wire.CreateInboxDto())


@router.post("/inboxes/withOptions", status_code=status.HTTP_201_CREATED)
async def create_inbox_with_options(
    slurp: SlurpDep, opts: Annotated[wire.CreateInboxDto | None, Body()] = None
) -> wire.InboxDto:
    return await _create(slurp, opts or wire.CreateInboxDto())


@router.get("/inboxes/paginated")
async def get_all_inboxes(
    slurp: SlurpDep,
    page: PageQ = 0,
    size: SizeQ = 20,
    sort: SortQ = "ASC",
    favourite: bool | None = None,
    search: Annotated[str | None, Query(max_length=320)] = None,
    since: TimeQ = None,
    before: TimeQ = None,
) -> wire.Page[wire.InboxPreview]:
    """A Spring page of inbox previews (``favourite`` false means: any)."""
    rows, total = await slurp.store.inboxes(
        part(page, size, sort),
        since=utc(since),
        before=utc(before),
        favourite=True if favourite else None,
        search=search,
    )
    views = [await slurp.mailbox.get_inbox(r.id) for r in rows]
    extras = await slurp.store.extras([r.id for r in rows])
    items = [mapping.inbox_preview(v, extras[v.id], slurp.user_id) for v in views]
    return wire.page_of(items, page=page, size=size, total=total)


@router.get("/inboxes")
async def get_inboxes(
    slurp: SlurpDep,
    size: Annotated[int, Query(ge=1, le=100)] = 100,
    sort: SortQ = "ASC",
    since: TimeQ = None,
    before: TimeQ = None,
) -> list[wire.InboxDto]:
    rows, _ = await slurp.store.inboxes(part(0, size, sort), since=utc(since), before=utc(before))
    return await inbox_dtos(slurp, [await slurp.mailbox.get_inbox(r.id) for r in rows])


@router.get("/inboxes/getLatestEmail")
async def get_latest_email_in_inbox(
    slurp: SlurpDep,
    inbox_id: Annotated[str, Query(alias="inboxId")],
    timeout_millis: Annotated[int, Query(alias="timeoutMillis", ge=0)],
) -> wire.Email:
    """The newest email of the inbox, waiting up to ``timeoutMillis`` for a first one."""
    return await latest(slurp, inbox_id, timeout=timeout_millis)


@router.get("/inboxes/{inbox_id}")
async def get_inbox(inbox_id: str, slurp: SlurpDep) -> wire.InboxDto:
    return (await inbox_dtos(slurp, [await slurp.mailbox.get_inbox(inbox_id)]))[0]


@router.delete("/inboxes/{inbox_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_inbox(inbox_id: str, slurp: SlurpDep) -> Response:
    await slurp.mailbox.delete_inbox(inbox_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/inboxes", status_code=status.HTTP_204_NO_CONTENT)
async def delete_all_inboxes(
    slurp: SlurpDep,
    created_at_since: Annotated[datetime | None, Query(alias="createdAtSince")] = None,
    created_at_before: Annotated[datetime | None, Query(alias="createdAtBefore")] = None,
) -> Response:
    """Delete every inbox of the caller (optionally only those created in a window)."""
    while True:
        rows, _ = await slurp.store.inboxes(
            Slice(page=0, size=100, descending=False),
            since=utc(created_at_since),
            before=utc(created_at_before),
        )
        if not rows:
            return Response(status_code=status.HTTP_204_NO_CONTENT)
        for row in rows:
            try:
                await slurp.mailbox.delete_inbox(row.id)
            except NotFound:
                pass  # deleted concurrently


@router.delete("/inboxes/{inbox_id}/deleteAllInboxEmails", status_code=204)
async def delete_all_inbox_emails(inbox_id: str, slurp: SlurpDep) -> Response:
    await slurp.mailbox.empty_inbox(inbox_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/inboxes/{inbox_id}/emails/paginated")
async def get_inbox_emails_paginated(
    inbox_id: str,
    slurp: SlurpDep,
    page: PageQ = 0,
    size: SizeQ = 20,
    sort: SortQ = "ASC",
    since: TimeQ = None,
    before: TimeQ = None,
) -> wire.Page[wire.EmailPreview]:
    inbox_id = await slurp.mailbox.require_inbox(inbox_id)
    rows, total = await slurp.store.messages(
        part(page, size, sort), inbox_ids=[inbox_id], since=utc(since), before=utc(before)
    )
    items = [mapping.email_preview(message_out(m)) for m in rows]
    return wire.page_of(items, page=page, size=size, total=total)


@router.get("/inboxes/{inbox_id}/emails")
async def get_emails(
    inbox_id: str,
    slurp: SlurpDep,
    size: Annotated[int | None, Query(ge=1, le=100)] = None,
    limit: Annotated[int | None, Query(ge=1, le=100)] = None,
    sort: SortQ = "ASC",
    unread_only: Annotated[bool, Query(alias="unreadOnly")] = False,
    since: TimeQ = None,
    before: TimeQ = None,
    min_count: Annotated[int | None, Query(alias="minCount", ge=1, le=100)] = None,
    retry_timeout: Annotated[int | None, Query(alias="retryTimeout", ge=0)] = None,
) -> list[wire.EmailPreview]:
    """An inbox's emails; with ``minCount``, first wait (``retryTimeout`` ms) until that
    many exist (MailSlurp's legacy wait, through the native wait service)."""
    inbox_id = await slurp.mailbox.require_inbox(inbox_id)
    if min_count is not None:
        await slurp.runtime.waits.wait(
            tenant_id=slurp.tenant_id,
            inbox_id=inbox_id,
            flt=slurp_filter(unread_only=unread_only, before=utc(before)),
            count=min_count,
            since=Since(time=utc(since)),
            timeout=slurp.seconds(retry_timeout),
        )
    rows, _ = await slurp.store.messages(
        part(0, size or limit or 100, sort),
        inbox_ids=[inbox_id],
        unread_only=unread_only,
        since=utc(since),
        before=utc(before),
    )
    return [mapping.email_preview(message_out(m)) for m in rows]


@router.get("/inboxes/{inbox_id}/emails/count")
async def get_inbox_email_count(inbox_id: str, slurp: SlurpDep) -> wire.CountDto:
    inbox = await slurp.mailbox.get_inbox(inbox_id)
    return wire.CountDto(total_elements=inbox.message_count)


@router.post("/inboxes/{inbox_id}", status_code=status.HTTP_201_CREATED)
async def send_email(inbox_id: str, opts: wire.SendEmailOptions, slurp: SlurpDep) -> Response:
    """Send from the inbox (through the native outbox and delivery queue)."""
    await send(slurp, inbox_id, opts)
    return Response(status_code=status.HTTP_201_CREATED)


@router.post("/inboxes/{inbox_id}/confirm", status_code=status.HTTP_201_CREATED)
async def send_email_and_confirm(
    inbox_id: str, opts: wire.SendEmailOptions, slurp: SlurpDep
) -> wire.SentEmailDto:
    outbound_id = await send(slurp, inbox_id, opts)
    outbound = await slurp.outbox.get_outbound(outbound_id)
    return await sent_dto(slurp, outbound, attachments=list(opts.attachments))
