"""Server-sent events: ``GET /api/v1/events`` streams the caller's events as they happen.

Subscribe to the tenant's bus topic first, then replay from the store what
came after ``Last-Event-ID`` (or ``since``), then send live events; an idle
stream gets a heartbeat comment. Without a cursor the stream starts at "now".
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query

from app.api.deps import MailboxDep, RuntimeDep, TenantDep
from app.api.schemas.common import ErrorOut
from app.api.sse import EventStream, comment, encode
from app.errors import InvalidInput
from app.services.feed import EVENT_TYPES, Feed, FeedCursor

router = APIRouter(prefix="/api/v1", tags=["events"])

STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "An event stream: `id: <cursor>`, `event: message.received` (data: "
        "MessageSummary), `delivery.updated` (data: Delivery) or `rule.hit` (data: Rule).",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
    400: {"model": ErrorOut},
    404: {"model": ErrorOut},
}


@router.get("/events", response_class=EventStream, responses=STREAM_DOC)
async def stream_events(
    runtime: RuntimeDep,
    tenant_id: TenantDep,
    mailbox: MailboxDep,
    inbox_id: Annotated[str | None, Query(description="Only this inbox's events.")] = None,
    types: Annotated[
        list[str] | None,
        Query(description="Event types to send (repeatable or comma-separated); default all."),
    ] = None,
    since: Annotated[
        str | None,
        Query(description="Resume after this event id (as Last-Event-ID); `0-0` replays all."),
    ] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> EventStream:
    """Server-sent events of the caller's mail, deliveries and fault-rule hits."""
    if inbox_id is not None:
        inbox_id = await mailbox.require_inbox(inbox_id)
    wanted = {t.strip() for raw in types or () for t in raw.split(",") if t.strip()}
    unknown = wanted - set(EVENT_TYPES)
    if unknown:
        raise InvalidInput(f"unknown event types {sorted(unknown)}; known: {list(EVENT_TYPES)}")
    resume = last_event_id or since
    start = FeedCursor.parse(resume)
    if resume and start is None:
        raise InvalidInput("Last-Event-ID/since must be an event id from this stream")
    feed = Feed(db=runtime.db, tenant_id=tenant_id, inbox_id=inbox_id, types=wanted or EVENT_TYPES)
    settings = runtime.settings
    bus = runtime.bus

    async def chunks() -> AsyncIterator[bytes]:
        with bus.subscribe(f"tenant:{tenant_id}") as sub:
            cursor = start if start is not None else await feed.head()
            yield b"retry: 2000\n" + comment("stream open")
            rescan = start is not None
            while True:
                if rescan:
                    while items := await feed.replay(cursor):
                        for item in items:
                            yield encode(item.type, item.data, item.cursor.encode())
                            cursor = item.cursor
                    rescan = False
                if not await sub.wait(settings.sse_heartbeat):
                    yield comment("heartbeat")
                    continue
                events, rescan = sub.drain()
                if not rescan:
                    for item in await feed.for_events(events, cursor):
                        yield encode(item.type, item.data, item.cursor.encode())
                        cursor = item.cursor

    return EventStream(chunks(), write_timeout=settings.sse_write_timeout, closing=runtime.closing)
