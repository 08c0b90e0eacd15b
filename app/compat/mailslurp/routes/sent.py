"""SentEmailsController: sent emails and their delivery statuses.

A sent email is a native outbound message; a delivery status is one of its
deliveries once it has an outcome (delivered, bounced or expired), with the last
SMTP reply as ``smtpStatusCode``/``smtpResponse`` and the remote MTA's address as
``remoteMtaIp`` (none for local delivery into a harness inbox).
``wait-for`` waits (push-based, ``timeout`` in ms, 404 on timeout) for the
``index``-th status of a sent email (the native delivery wait) or of an inbox.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.compat.mailslurp import mapping, wire
from app.compat.mailslurp.deps import (
    PageQ,
    SizeQ,
    Slurp,
    SlurpDep,
    SortQ,
    TimeoutQ,
    TimeQ,
    part,
    utc,
)
from app.compat.mailslurp.routes.common import sent_dto
from app.compat.mailslurp.store import Slice
from app.delivery.queue import Queue
from app.errors import InvalidInput, NotFound, WaitTimeout
from app.services.mailbox import check_id
from app.services.outbox import delivery_out
from app.store.models import Delivery

router = APIRouter(tags=["sentEmails"])

SearchQ = Annotated[str | None, Query(alias="searchFilter", max_length=1000)]


async def _statuses(slurp: Slurp, rows: list[Delivery]) -> list[wire.DeliveryStatusDto]:
    outbounds = await slurp.store.outbounds(list({d.outbound_id for d in rows}))
    out = []
    for d in rows:
        o = outbounds.get(d.outbound_id)
        out.append(
            mapping.delivery_status(
                delivery_out(d, []),
                user_id=slurp.user_id,
                inbox_id=o.inbox_id if o else None,
                subject=o.subject if o else None,
                reporting_mta=slurp.runtime.settings.smtp_hostname,
            )
        )
    return out


async def _sent_page(
    slurp: Slurp, inbox_id: str | None, page: int, size: int, sort: str, search: str | None
) -> wire.Page[wire.SentEmailProjection]:
    if inbox_id is not None:
        inbox_id = await slurp.mailbox.require_inbox(inbox_id)
    rows, total = await slurp.store.sent(part(page, size, sort), inbox_id=inbox_id, search=search)
    items = [mapping.sent_projection(o, user_id=slurp.user_id) for o in rows]
    return wire.page_of(items, page=page, size=size, total=total)


@router.get("/sent")
async def get_sent_emails(
    slurp: SlurpDep,
    inbox_id: Annotated[str | None, Query(alias="inboxId")] = None,
    page: PageQ = 0,
    size: SizeQ = 20,
    sort: SortQ = "ASC",
    search_filter: SearchQ = None,
) -> wire.Page[wire.SentEmailProjection]:
    return await _sent_page(slurp, inbox_id, page, size, sort, search_filter)


@router.get("/inboxes/{inbox_id}/sent")
async def get_inbox_sent_emails(
    inbox_id: str,
    slurp: SlurpDep,
    page: PageQ = 0,
    size: SizeQ = 20,
    sort: SortQ = "ASC",
    search_filter: SearchQ = None,
) -> wire.Page[wire.SentEmailProjection]:
    return await _sent_page(slurp, inbox_id, page, size, sort, search_filter)


@router.get("/sent/delivery-status/wait-for")
async def wait_for_delivery_statuses(
    slurp: SlurpDep,
    sent_id: Annotated[str | None, Query(alias="sentId")] = None,
    inbox_id: Annotated[str | None, Query(alias="inboxId")] = None,
    timeout: TimeoutQ = None,
    index: Annotated[int, Query(ge=0)] = 0,
    since: TimeQ = None,
    before: TimeQ = None,
) -> wire.DeliveryStatusDto:
    """The ``index``-th delivery status of a sent email or of an inbox's sent mail."""
    seconds = slurp.seconds(timeout)
    if sent_id is not None:
        outbound = await slurp.outbox.get_outbound(sent_id)
        if index >= len(outbound.deliveries):
            raise NotFound(f"sent email {sent_id} has {len(outbound.deliveries)} recipient(s)")
        done = await slurp.outbox.wait_delivery(
            outbound.deliveries[index].id, state="final", timeout=seconds
        )
        return mapping.delivery_status(
            done,
            user_id=slurp.user_id,
            inbox_id=outbound.inbox_id,
            subject=outbound.subject,
            reporting_mta=slurp.runtime.settings.smtp_hostname,
        )
    if inbox_id is None:
        raise InvalidInput("sentId or inboxId: one is required")
    inbox_id = await slurp.mailbox.require_inbox(inbox_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    window = Slice(page=index, size=1, descending=False)
    # Push-based like every native wait: subscribe, then read, then await a change.
    with slurp.runtime.bus.subscribe(f"tenant:{slurp.tenant_id}") as sub:
        while True:
            rows, _ = await slurp.store.statuses(
                window, inbox_id=inbox_id, since=utc(since), before=utc(before)
            )
            if rows:
                return (await _statuses(slurp, rows))[0]
            remaining = deadline - loop.time()
            if remaining <= 0 or not await sub.wait(remaining):
                raise WaitTimeout(
                    f"no delivery status #{index} for inbox {inbox_id} within {seconds:g} s"
                )
            sub.drain()


@router.get("/sent/delivery-status")
async def get_all_sent_delivery_statuses(
    slurp: SlurpDep,
    page: PageQ = 0,
    size: SizeQ = 20,
    sort: SortQ = "ASC",
    since: TimeQ = None,
    before: TimeQ = None,
) -> wire.Page[wire.DeliveryStatusDto]:
    rows, total = await slurp.store.statuses(
        part(page, size, sort), since=utc(since), before=utc(before)
    )
    return wire.page_of(await _statuses(slurp, rows), page=page, size=size, total=total)


@router.get("/sent/delivery-status/{delivery_id}")
async def get_sent_delivery_status(delivery_id: str, slurp: SlurpDep) -> wire.DeliveryStatusDto:
    d = await slurp.outbox.get_delivery(delivery_id)
    outbounds = await slurp.store.outbounds([d.outbound_id])
    o = outbounds.get(d.outbound_id)
    return mapping.delivery_status(
        d,
        user_id=slurp.user_id,
        inbox_id=o.inbox_id if o else None,
        subject=o.subject if o else None,
        reporting_mta=slurp.runtime.settings.smtp_hostname,
    )


@router.get("/sent/{sent_id}/delivery-status")
async def get_sent_delivery_statuses_by_sent_id(
    sent_id: str,
    slurp: SlurpDep,
    page: PageQ = 0,
    size: SizeQ = 20,
    sort: SortQ = "ASC",
) -> wire.Page[wire.DeliveryStatusDto]:
    await slurp.outbox.get_outbound(sent_id)
    rows, total = await slurp.store.statuses(
        part(page, size, sort), outbound_id=check_id(sent_id, "sent email")
    )
    return wire.page_of(await _statuses(slurp, rows), page=page, size=size, total=total)


@router.get("/inboxes/{inbox_id}/delivery-status")
async def get_delivery_statuses_by_inbox_id(
    inbox_id: str,
    slurp: SlurpDep,
    page: PageQ = 0,
    size: SizeQ = 20,
    sort: SortQ = "ASC",
    since: TimeQ = None,
    before: TimeQ = None,
) -> wire.Page[wire.DeliveryStatusDto]:
    inbox_id = await slurp.mailbox.require_inbox(inbox_id)
    rows, total = await slurp.store.statuses(
        part(page, size, sort), inbox_id=inbox_id, since=utc(since), before=utc(before)
    )
    return wire.page_of(await _statuses(slurp, rows), page=page, size=size, total=total)


@router.get("/inboxes/{inbox_id}/sent/count")
async def get_inbox_sent_count(inbox_id: str, slurp: SlurpDep) -> wire.CountDto:
    inbox_id = await slurp.mailbox.require_inbox(inbox_id)
    _, total = await slurp.store.sent(Slice(page=0, size=1, descending=False), inbox_id=inbox_id)
    return wire.CountDto(total_elements=total)


async def _sent_raw(slurp: Slurp, sent_id: str) -> bytes:
    outbound = await slurp.outbox.get_outbound(sent_id)  # the caller's, or 404
    async with slurp.runtime.db.read() as session:
        _, raw = await Queue.load(session, outbound.id)
    return raw


@router.get(
    "/sent/{sent_id}/raw",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
async def get_raw_sent_email_contents(sent_id: str, slurp: SlurpDep) -> Response:
    """The sent message's bytes as queued."""
    return Response(content=await _sent_raw(slurp, sent_id), media_type="text/plain")


@router.get("/sent/{sent_id}/raw/json")
async def get_raw_sent_email_json(sent_id: str, slurp: SlurpDep) -> wire.RawEmailJson:
    return wire.RawEmailJson(content=(await _sent_raw(slurp, sent_id)).decode("utf-8", "replace"))


@router.get("/sent/{sent_id}")
async def get_sent_email(sent_id: str, slurp: SlurpDep) -> wire.SentEmailDto:
    return await sent_dto(slurp, await slurp.outbox.get_outbound(sent_id))
