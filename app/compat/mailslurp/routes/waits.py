"""WaitForController: MailSlurp's wait-for operations on the native ``WaitService``.

Semantics: ``timeout`` is in milliseconds (server default when absent, capped at
``MAILHARNESS_WAIT_MAX_TIMEOUT``); a timeout answers 404; ``count`` is a minimum
(``waitFor`` with ``countType=EXACTLY`` also fails, 404, when more match);
``index`` is 0-based in arrival order; mail already stored counts, so
``waitForLatestEmail`` returns at once when the inbox holds a (matching) email
(``unreadOnly=true`` waits for a new one). Operations that return a full
``Email`` mark it read. ``delay`` is accepted and ignored (waits are push-based).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from app.api.views import message_out
from app.compat.mailslurp import mapping, wire
from app.compat.mailslurp.deps import Slurp, SlurpDep, SortQ, TimeoutQ, TimeQ, utc
from app.compat.mailslurp.matching import SlurpFilter, slurp_filter
from app.compat.mailslurp.routes.common import read_email
from app.errors import InvalidInput, WaitTimeout
from app.events.waiters import Since
from app.store.models import Message
from app.store.repositories.messages import MessageRepository

router = APIRouter(tags=["waitFor"])

SCAN = 100
MAX_LISTED = 1000

InboxQ = Annotated[str | None, Query(alias="inboxId")]
CountQ = Annotated[int, Query(ge=1, le=100)]
UnreadQ = Annotated[bool, Query(alias="unreadOnly")]


def _inbox(inbox_id: str | None) -> str:
    if not inbox_id:
        raise InvalidInput("inboxId: required (waits are per inbox here)")
    return inbox_id


async def _wait(
    slurp: Slurp,
    inbox_id: str | None,
    flt: SlurpFilter,
    *,
    count: int,
    since: datetime | None,
    timeout: int | None,
) -> tuple[str, list[Message]]:
    """The first ``count`` matches (oldest first), through the native wait service."""
    checked = await slurp.mailbox.require_inbox(_inbox(inbox_id))
    found = await slurp.runtime.waits.wait(
        tenant_id=slurp.tenant_id,
        inbox_id=checked,
        flt=flt,
        count=count,
        since=Since(time=since),
        timeout=slurp.seconds(timeout),
    )
    return checked, found


async def _matching(
    slurp: Slurp, inbox_id: str, flt: SlurpFilter, since: datetime | None
) -> list[Message]:
    """Every match stored now, oldest first (at most ``MAX_LISTED``)."""
    out: list[Message] = []
    after = 0
    while len(out) < MAX_LISTED:
        async with slurp.runtime.db.read() as session:
            rows = await MessageRepository(session, slurp.tenant_id).oldest_after(
                inbox_id=inbox_id, after_seq=after, after_time=since, seen=flt.seen, limit=SCAN
            )
        out.extend(m for m in rows if flt.matches(m))
        if len(rows) < SCAN:
            break
        after = rows[-1].seq
    return out[:MAX_LISTED]


async def _newest(
    slurp: Slurp, inbox_id: str, flt: SlurpFilter, since: datetime | None, floor: Message
) -> Message:
    """The newest match stored now (``floor`` is a known match)."""
    before: int | None = None
    while True:
        async with slurp.runtime.db.read() as session:
            rows = await MessageRepository(session, slurp.tenant_id).newest(
                inbox_id=inbox_id,
                seen=flt.seen,
                after_seq=floor.seq - 1,
                after_time=since,
                before_seq=before,
                limit=SCAN,
            )
        for m in rows:
            if flt.matches(m):
                return m
        if len(rows) < SCAN:
            return floor
        before = rows[-1].seq


def _previews(found: list[Message], sort: str) -> list[wire.EmailPreview]:
    ordered = sorted(found, key=lambda m: m.seq, reverse=sort == "DESC")
    return [mapping.email_preview(message_out(m)) for m in ordered]


async def latest(
    slurp: Slurp,
    inbox_id: str | None,
    *,
    timeout: int | None,
    unread_only: bool = False,
    since: datetime | None = None,
    before: datetime | None = None,
) -> wire.Email:
    flt = slurp_filter(unread_only=unread_only, before=before)
    checked, found = await _wait(slurp, inbox_id, flt, count=1, since=since, timeout=timeout)
    newest = await _newest(slurp, checked, flt, since, found[0])
    return await read_email(slurp, newest.id)


@router.get("/waitForLatestEmail")
async def wait_for_latest_email(
    slurp: SlurpDep,
    inbox_id: InboxQ = None,
    timeout: TimeoutQ = None,
    unread_only: UnreadQ = False,
    since: TimeQ = None,
    before: TimeQ = None,
) -> wire.Email:
    """The newest email, waiting for a first one if the inbox holds none."""
    return await latest(
        slurp,
        inbox_id,
        timeout=timeout,
        unread_only=unread_only,
        since=utc(since),
        before=utc(before),
    )


@router.get("/waitForEmailCount")
async def wait_for_email_count(
    slurp: SlurpDep,
    count: CountQ,
    inbox_id: InboxQ = None,
    timeout: TimeoutQ = None,
    unread_only: UnreadQ = False,
    since: TimeQ = None,
    before: TimeQ = None,
    sort: SortQ = "ASC",
) -> list[wire.EmailPreview]:
    """Every email once at least ``count`` are there."""
    flt = slurp_filter(unread_only=unread_only, before=utc(before))
    checked, _ = await _wait(slurp, inbox_id, flt, count=count, since=utc(since), timeout=timeout)
    return _previews(await _matching(slurp, checked, flt, utc(since)), sort)


@router.get("/waitForNthEmail")
async def wait_for_nth_email(
    slurp: SlurpDep,
    inbox_id: InboxQ = None,
    index: Annotated[int, Query(ge=0, le=99)] = 0,
    timeout: TimeoutQ = None,
    unread_only: UnreadQ = False,
    since: TimeQ = None,
    before: TimeQ = None,
) -> wire.Email:
    """The ``index``-th (0-based, arrival order) email, waiting until it exists."""
    flt = slurp_filter(unread_only=unread_only, before=utc(before))
    _, found = await _wait(slurp, inbox_id, flt, count=index + 1, since=utc(since), timeout=timeout)
    return await read_email(slurp, found[index].id)


@router.post("/waitForMatchingEmails")
async def wait_for_matching_emails(
    slurp: SlurpDep,
    options: wire.MatchOptions,
    count: CountQ,
    inbox_id: InboxQ = None,
    timeout: TimeoutQ = None,
    unread_only: UnreadQ = False,
    since: TimeQ = None,
    before: TimeQ = None,
    sort: SortQ = "ASC",
) -> list[wire.EmailPreview]:
    """Every matching email once at least ``count`` match."""
    flt = slurp_filter(
        unread_only=unread_only,
        before=utc(before),
        matches=options.matches,
        conditions=options.conditions,
    )
    checked, _ = await _wait(slurp, inbox_id, flt, count=count, since=utc(since), timeout=timeout)
    return _previews(await _matching(slurp, checked, flt, utc(since)), sort)


@router.post("/waitForMatchingFirstEmail")
async def wait_for_matching_first_email(
    slurp: SlurpDep,
    options: wire.MatchOptions,
    inbox_id: InboxQ = None,
    timeout: TimeoutQ = None,
    unread_only: UnreadQ = False,
    since: TimeQ = None,
    before: TimeQ = None,
) -> wire.Email:
    """The first (oldest) matching email, waiting until one exists."""
    flt = slurp_filter(
        unread_only=unread_only,
        before=utc(before),
        matches=options.matches,
        conditions=options.conditions,
    )
    _, found = await _wait(slurp, inbox_id, flt, count=1, since=utc(since), timeout=timeout)
    return await read_email(slurp, found[0].id)


@router.post("/waitFor")
async def wait_for(slurp: SlurpDep, conditions: wire.WaitForConditions) -> list[wire.EmailPreview]:
    """``count`` matching emails (``ATLEAST``: all of them once there are enough)."""
    flt = slurp_filter(
        unread_only=conditions.unread_only,
        before=utc(conditions.before),
        matches=conditions.matches,
    )
    since = utc(conditions.since)
    checked, found = await _wait(
        slurp,
        conditions.inbox_id,
        flt,
        count=conditions.count,
        since=since,
        timeout=conditions.timeout,
    )
    if conditions.count_type == "ATLEAST":
        return _previews(await _matching(slurp, checked, flt, since), conditions.sort_direction)
    everything = await _matching(slurp, checked, flt, since)
    if len(everything) > conditions.count:
        raise WaitTimeout(
            f"expected exactly {conditions.count} matching emails, found {len(everything)}"
        )
    return _previews(found, conditions.sort_direction)
