"""Sending and delivery state: send, sent list, release, outbound, deliveries, waits."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from app.api.deps import CursorQ, LimitQ, OutboxDep, RuntimeDep, WaitSlot
from app.api.schemas.common import ErrorOut, Page
from app.api.schemas.delivery import (
    DeliveryOut,
    DeliveryState,
    OutboundOut,
    ReleaseRequest,
    SendOut,
    SendRequest,
    WaitState,
)

router = APIRouter(tags=["delivery"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut}}


@router.post(
    "/api/v1/inboxes/{inbox_id}/send",
    status_code=status.HTTP_202_ACCEPTED,
    responses={**NOT_FOUND, 422: {"model": ErrorOut}},
)
async def send_message(inbox_id: str, req: SendRequest, outbox: OutboxDep) -> SendOut:
    """Compose a message from this inbox and queue one delivery per recipient."""
    return await outbox.send(inbox_id, req)


@router.get("/api/v1/inboxes/{inbox_id}/sent", responses=NOT_FOUND)
async def list_sent(
    inbox_id: str, outbox: OutboxDep, limit: LimitQ = 50, cursor: CursorQ = None
) -> Page[OutboundOut]:
    """Mail sent from this inbox (never mixed with received mail), newest first."""
    return await outbox.list_sent(inbox_id, limit=limit, cursor=cursor)


@router.post(
    "/api/v1/messages/{message_id}/release",
    status_code=status.HTTP_202_ACCEPTED,
    responses={**NOT_FOUND, 422: {"model": ErrorOut}},
)
async def release_message(message_id: str, req: ReleaseRequest, outbox: OutboxDep) -> OutboundOut:
    """Queue a stored message, unchanged, for delivery to the given addresses."""
    return await outbox.release(message_id, req.to)


@router.get("/api/v1/outbound/{outbound_id}", responses=NOT_FOUND)
async def get_outbound(outbound_id: str, outbox: OutboxDep) -> OutboundOut:
    """An outbound message with each recipient's delivery."""
    return await outbox.get_outbound(outbound_id)


@router.get("/api/v1/deliveries", responses=NOT_FOUND)
async def list_deliveries(
    outbox: OutboxDep,
    inbox_id: str | None = None,
    state: DeliveryState | None = None,
    recipient: Annotated[str | None, Query(max_length=320)] = None,
    limit: LimitQ = 50,
    cursor: CursorQ = None,
) -> Page[DeliveryOut]:
    """Deliveries, newest first, by sender inbox, state or recipient."""
    return await outbox.list_deliveries(
        inbox_id=inbox_id, state=state, recipient=recipient, limit=limit, cursor=cursor
    )


@router.get("/api/v1/deliveries/{delivery_id}", responses=NOT_FOUND)
async def get_delivery(delivery_id: str, outbox: OutboxDep) -> DeliveryOut:
    """One delivery with its event timeline."""
    return await outbox.get_delivery(delivery_id)


@router.get(
    "/api/v1/deliveries/{delivery_id}/wait",
    responses={
        **NOT_FOUND,
        408: {"model": ErrorOut},
        409: {"model": ErrorOut},
        429: {"model": ErrorOut},
    },
    dependencies=[WaitSlot],
)
async def wait_for_delivery(
    delivery_id: str,
    outbox: OutboxDep,
    runtime: RuntimeDep,
    state: WaitState = "final",
    timeout: Annotated[float | None, Query(ge=0)] = None,
) -> DeliveryOut:
    """Wait until the delivery is in ``state`` (``final``: delivered, bounced, expired or
    held); 408 on timeout, 409 if it ended in a different final state."""
    chosen = runtime.settings.wait_default_timeout if timeout is None else timeout
    return await outbox.wait_delivery(delivery_id, state=state, timeout=runtime.waits.clamp(chosen))
