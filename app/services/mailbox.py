"""Inbox and message use cases for one tenant: create, list, search, read, mark, delete.

Inputs: the ``Database``, the caller's tenant id, validated request values.
Outputs: response schemas (through ``app.api.views``) or raw bytes.
Errors: ``NotFound`` for unknown or foreign ids (also malformed ones),
``Conflict`` for a taken address, ``InvalidInput`` for a bad address or ``since``,
``InvalidQuery`` (400) for a search query that cannot be read.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.addresses import normalize_address, valid_address, valid_local_part
from app.api import pagination, views
from app.api.schemas.common import Page
from app.api.schemas.inboxes import InboxCreate, InboxOut
from app.api.schemas.messages import MessageOut, MessageSummaryOut
from app.errors import InboxLimit, InvalidInput, InvalidQuery, NotFound
from app.events.waiters import Since
from app.ingest import random_local_part
from app.mail import Attachment, attachment_payload
from app.search import query as search_query
from app.store.db import Database
from app.store.models import Inbox
from app.store.repositories.inboxes import InboxRepository
from app.store.repositories.messages import MessageRepository
from app.store.types import utcnow


def check_id(value: str, what: str) -> str:
    """Ids are canonical UUIDs; anything else is simply not found."""
    try:
        canonical = str(uuid.UUID(value))
    except ValueError:
        raise NotFound(f"no {what} {value}") from None
    if canonical != value.lower():
        raise NotFound(f"no {what} {value}")
    return canonical


def canonical_ids(values: list[str]) -> list[str]:
    """The canonical form of the values that are ids; the others cannot match anything."""
    found: list[str] = []
    for value in values:
        try:
            found.append(str(uuid.UUID(value)))
        except (ValueError, TypeError, AttributeError):
            continue
    return found


@dataclass(frozen=True, slots=True)
class AttachmentFile:
    meta: Attachment
    data: bytes


@dataclass(frozen=True, slots=True)
class Window:
    """One offset page of all of the tenant's messages (newest first) and the counts
    mailbox-style clients show next to it."""

    items: list[MessageOut]
    matches: int
    matches_unread: int
    total: int
    unread: int


class Mailbox:
    def __init__(
        self, *, db: Database, tenant_id: str, domains: list[str], max_inboxes: int = 0
    ) -> None:
        self.db = db
        self.tenant_id = tenant_id
        self.domains = domains
        self.max_inboxes = max_inboxes

    # -- inboxes ---------------------------------------------------------------
    def _address_for(self, requested: str | None) -> str:
        if requested is None:
            return f"{random_local_part()}@{self.domains[0]}"
        requested = requested.strip()
        if "@" in requested:
            if not valid_address(requested):
                raise InvalidInput(f"address: {requested!r} is not a valid email address")
            return normalize_address(requested)
        if not valid_local_part(requested):
            raise InvalidInput(f"address: {requested!r} is not a valid local part")
        return normalize_address(f"{requested}@{self.domains[0]}")

    async def create_inbox(self, data: InboxCreate) -> InboxOut:
        tags = [t.strip() for t in data.tags if t.strip()]
        if any(len(t) > 100 for t in tags):
            raise InvalidInput("tags: a tag is at most 100 characters")
        expires_at = utcnow() + timedelta(seconds=data.expires_in) if data.expires_in else None
        async with self.db.write() as session:
            repo = InboxRepository(session, self.tenant_id)
            if self.max_inboxes and await repo.count(self.tenant_id) >= self.max_inboxes:
                raise InboxLimit(
                    f"this key already has {self.max_inboxes} inboxes "
                    "(MAILHARNESS_MAX_INBOXES_PER_KEY); delete some first"
                )
            inbox = await repo.create(
                inbox_id=str(uuid.uuid4()),
                address=self._address_for(data.address),
                tenant_id=self.tenant_id,
                name=data.name,
                tags=tags,
                expires_at=expires_at,
            )
        return views.inbox_out(inbox, tags=list(dict.fromkeys(tags)), message_count=0)

    async def _inbox_views(self, repo: InboxRepository, inboxes: list[Inbox]) -> list[InboxOut]:
        ids = [i.id for i in inboxes]
        tags = await repo.tags(ids)
        counts = await repo.message_counts(ids)
        return [views.inbox_out(i, tags=tags[i.id], message_count=counts[i.id]) for i in inboxes]

    async def get_inbox(self, inbox_id: str) -> InboxOut:
        inbox_id = check_id(inbox_id, "inbox")
        async with self.db.read() as session:
            repo = InboxRepository(session, self.tenant_id)
            return (await self._inbox_views(repo, [await repo.get(inbox_id)]))[0]

    async def require_inbox(self, inbox_id: str) -> str:
        inbox_id = check_id(inbox_id, "inbox")
        async with self.db.read() as session:
            await InboxRepository(session, self.tenant_id).get(inbox_id)
        return inbox_id

    async def list_inboxes(
        self, *, tag: str | None, limit: int, cursor: str | None
    ) -> Page[InboxOut]:
        fp = pagination.fingerprint("inboxes", tag=tag)
        pos = pagination.decode(cursor, fp)
        before: tuple[datetime, str] | None = None
        if pos is not None:
            try:
                before = (datetime.fromisoformat(pos[0]), str(pos[1]))
            except (TypeError, ValueError, IndexError) as exc:
                raise InvalidInput("the cursor is malformed") from exc
        async with self.db.read() as session:
            repo = InboxRepository(session, self.tenant_id)
            rows = await repo.newest(tag=tag, limit=limit + 1, before=before)
            items = await self._inbox_views(repo, rows[:limit])
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = pagination.encode([last.created_at.isoformat(), last.id], fp)
        return Page[InboxOut](items=items, next_cursor=next_cursor)

    async def delete_inbox(self, inbox_id: str) -> None:
        inbox_id = check_id(inbox_id, "inbox")
        async with self.db.write() as session:
            await InboxRepository(session, self.tenant_id).delete(inbox_id)

    async def empty_inbox(self, inbox_id: str) -> None:
        inbox_id = check_id(inbox_id, "inbox")
        async with self.db.write() as session:
            await InboxRepository(session, self.tenant_id).get(inbox_id)
            await MessageRepository(session, self.tenant_id).delete_for_inbox(inbox_id)

    # -- messages --------------------------------------------------------------
    async def resolve_since(self, since: str | None) -> Since:
        """``since`` is a message id (arrival order) or an RFC 3339 time."""
        if since is None or since == "":
            return Since()
        try:
            canonical = str(uuid.UUID(since))
        except ValueError:
            canonical = None
        if canonical is not None:
            async with self.db.read() as session:
                try:
                    message = await MessageRepository(session, self.tenant_id).get(canonical)
                except NotFound:
                    raise InvalidInput(f"since: no message {since}") from None
            return Since(seq=message.seq)
        try:
            when = datetime.fromisoformat(since.replace("Z", "+00:00").replace(" ", "+"))
        except ValueError:
            raise InvalidInput("since: expected an RFC 3339 time or a message id") from None
        if when.tzinfo is None:
            raise InvalidInput("since: the time needs a zone (Z or +hh:mm)")
        return Since(time=when)

    async def list_messages(
        self,
        *,
        inbox_id: str | None,
        limit: int,
        cursor: str | None,
        since: str | None = None,
        seen: bool | None = None,
        q: str | None = None,
        submission_id: str | None = None,
        tz: str | None = None,
    ) -> Page[MessageSummaryOut]:
        query = search_query.parse(q, tz=_zone(tz))
        if inbox_id is not None:
            inbox_id = await self.require_inbox(inbox_id)
        fp = pagination.fingerprint(
            "messages",
            inbox_id=inbox_id,
            since=since,
            seen=seen,
            q=q,
            submission_id=submission_id,
            tz=tz,
        )
        before = pagination.decode(cursor, fp)
        if before is not None and not isinstance(before, int):
            raise InvalidInput("the cursor is malformed")
        after = await self.resolve_since(since)
        async with self.db.read() as session:
            rows = await MessageRepository(session, self.tenant_id).newest(
                inbox_id=inbox_id,
                submission_id=_submission(submission_id),
                query=None if query.empty else query,
                seen=seen,
                after_seq=after.seq or None,
                after_time=after.time,
                before_seq=before,
                limit=limit + 1,
            )
        next_cursor = pagination.encode(rows[limit - 1].seq, fp) if len(rows) > limit else None
        return Page[MessageSummaryOut](
            items=[views.summary_out(m) for m in rows[:limit]], next_cursor=next_cursor
        )

    async def get_message(self, message_id: str) -> MessageOut:
        message_id = check_id(message_id, "message")
        async with self.db.read() as session:
            return views.message_out(
                await MessageRepository(session, self.tenant_id).get(message_id)
            )

    async def raw(self, message_id: str) -> bytes:
        message_id = check_id(message_id, "message")
        async with self.db.read() as session:
            repo = MessageRepository(session, self.tenant_id)
            return await repo.raw(await repo.get(message_id))

    async def attachment(self, message_id: str, attachment_id: str) -> AttachmentFile:
        message_id = check_id(message_id, "message")
        async with self.db.read() as session:
            repo = MessageRepository(session, self.tenant_id)
            message = await repo.get(message_id)
            meta = next(
                (a for a in message.details.get("attachments", []) if a["id"] == attachment_id),
                None,
            )
            if meta is None:
                raise NotFound(f"no attachment {attachment_id} in message {message_id}")
            raw = await repo.raw(message)
        found = attachment_payload(raw, int(meta["index"]))
        if found is None:
            raise NotFound(f"no attachment {attachment_id} in message {message_id}")
        return AttachmentFile(meta=found[0], data=found[1])

    async def mark_seen(self, message_id: str, seen: bool) -> MessageOut:
        message_id = check_id(message_id, "message")
        async with self.db.write() as session:
            repo = MessageRepository(session, self.tenant_id)
            message = await repo.set_seen(await repo.get(message_id), seen)
            return views.message_out(message)

    async def delete_message(self, message_id: str) -> None:
        message_id = check_id(message_id, "message")
        async with self.db.write() as session:
            repo = MessageRepository(session, self.tenant_id)
            await repo.delete(await repo.get(message_id))

    async def count_messages(
        self,
        *,
        q: str | None = None,
        inbox_id: str | None = None,
        submission_id: str | None = None,
        seen: bool | None = None,
        tz: str | None = None,
    ) -> int:
        """How many of the caller's messages ``q`` matches (e.g. Mailpit's
        ``messages_count``)."""
        query = search_query.parse(q, tz=_zone(tz))
        if inbox_id is not None:
            inbox_id = await self.require_inbox(inbox_id)
        async with self.db.read() as session:
            return await MessageRepository(session, self.tenant_id).count(
                inbox_id=inbox_id,
                submission_id=_submission(submission_id),
                query=None if query.empty else query,
                seen=seen,
            )

    async def delete_matching(
        self,
        *,
        q: str | None,
        inbox_id: str | None = None,
        submission_id: str | None = None,
        tz: str | None = None,
    ) -> int:
        """Delete the caller's messages that ``q`` matches (within ``inbox_id`` /
        ``submission_id`` when given); returns how many. An empty ``q`` without a
        scope is refused: it would delete every message."""
        query = search_query.parse(q, tz=_zone(tz))
        if query.empty and inbox_id is None and submission_id is None:
            raise InvalidQuery(
                "q is empty: give a query, inbox_id or submission_id "
                "(refusing to delete every message)"
            )
        if inbox_id is not None:
            inbox_id = await self.require_inbox(inbox_id)
        async with self.db.write() as session:
            return await MessageRepository(session, self.tenant_id).delete_matching(
                query=query, inbox_id=inbox_id, submission_id=_submission(submission_id)
            )

    # -- every inbox of the tenant as one mailbox (compatibility layers) ---------
    # One entry per submission: mail received once for several of the caller's
    # inboxes is listed once (its first copy), and marking or deleting it reaches
    # every copy.
    async def window(
        self, *, q: str | None, offset: int, limit: int, tz: str | None = None
    ) -> Window:
        """Messages matching ``q`` across all inboxes, newest first, from ``offset``."""
        query = parse_query(q, tz)
        async with self.db.read() as session:
            repo = MessageRepository(session, self.tenant_id)
            rows = await repo.first_copies(query=query, offset=offset, limit=limit)
            total = await repo.count_submissions()
            unread = await repo.count_submissions(seen=False)
            if query is not None:
                matches = await repo.count_submissions(query=query)
                matches_unread = await repo.count_submissions(query=query, seen=False)
            else:
                matches, matches_unread = total, unread
        return Window(
            items=[views.message_out(m) for m in rows],
            matches=matches,
            matches_unread=matches_unread,
            total=total,
            unread=unread,
        )

    async def latest(self, q: str | None = None, tz: str | None = None) -> MessageOut:
        """The newest message (matching ``q``) of any inbox; ``NotFound`` if none."""
        async with self.db.read() as session:
            rows = await MessageRepository(session, self.tenant_id).first_copies(
                query=parse_query(q, tz), offset=0, limit=1
            )
        if not rows:
            raise NotFound("no message matches" if q else "there are no messages")
        return views.message_out(rows[0])

    async def mark_seen_many(
        self, *, ids: list[str] | None, q: str | None, seen: bool, tz: str | None = None
    ) -> int:
        """Mark the messages with these ids (None: all) matching ``q``, every copy;
        foreign or unknown ids are skipped. Returns how many rows changed."""
        async with self.db.write() as session:
            return await MessageRepository(session, self.tenant_id).set_seen_submissions(
                ids=None if ids is None else canonical_ids(ids),
                query=parse_query(q, tz),
                seen=seen,
            )

    async def delete_many(
        self, *, ids: list[str] | None, q: str | None, tz: str | None = None
    ) -> int:
        """Delete the messages with these ids (None: all) matching ``q``, every copy;
        foreign or unknown ids are skipped. Returns how many rows were deleted."""
        async with self.db.write() as session:
            return await MessageRepository(session, self.tenant_id).delete_submissions(
                ids=None if ids is None else canonical_ids(ids), query=parse_query(q, tz)
            )


def _submission(value: str | None) -> str | None:
    """A submission id filter: canonical, or the nil UUID (no submission has it) for
    text that is not a UUID at all."""
    if value is None:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return str(uuid.UUID(int=0))


def _zone(tz: str | None) -> tzinfo:
    """The zone for date-only search terms (default UTC)."""
    if not tz:
        return UTC
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidQuery(f"tz: {tz!r} is not a known IANA time zone") from None


def parse_query(q: str | None, tz: str | None) -> search_query.Query | None:
    """The parsed search ``q`` (None when it matches everything); ``InvalidQuery`` if
    it cannot be read."""
    query = search_query.parse(q, tz=_zone(tz))
    return None if query.empty else query
