"""Long-poll waits on an inbox: ``wait`` (until N matches) and ``quiet`` (until none arrive).

SUMMARY
    Race-free by construction: subscribe to the inbox's topic, then read the
    store, then await the subscription. Every committed message publishes an
    event after its commit, so a message is seen either by the read (committed
    before it) or by its event (committed after the subscription); seqs
    already examined are skipped. Events carry arrival seqs, so a wake-up
    reads only the new rows; a lost event (buffer overflow, bridge reconnect)
    makes the waiter re-read the store instead. Nothing here sleeps or polls.

    ``MessageFilter`` is the one place where matchers are applied.

CONFIGURATION PARAMETERS
    wait_default_timeout, wait_max_timeout (the server-side cap).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from app.errors import MailArrived, WaitTimeout
from app.events.bus import EventBus, MessageReceived
from app.metrics import Metrics
from app.store.db import Database
from app.store.models import Message
from app.store.repositories.messages import MessageRepository

SCAN_PAGE = 500


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """Case-insensitive substring matchers; all given ones must match."""

    subject: str | None = None
    from_: str | None = None
    to: str | None = None
    body: str | None = None
    headers: tuple[tuple[str, str | None], ...] = ()
    seen: bool | None = None

    @staticmethod
    def parse_header(spec: str) -> tuple[str, str | None]:
        """``"Name: value"`` -> (name, value); ``"Name"`` -> (name, None) meaning "present"."""
        name, sep, value = spec.partition(":")
        return name.strip(), (value.strip() if sep else None)

    def matches(self, m: Message) -> bool:
        d = m.details
        if self.seen is not None and m.seen != self.seen:
            return False
        if self.subject is not None and not _contains(m.subject, self.subject):
            return False
        if self.from_ is not None and not _contains(
            f"{m.from_name or ''} <{m.from_address or ''}>", self.from_
        ):
            return False
        if self.to is not None:
            people = [*m.to, *d.get("cc", []), *d.get("bcc", [])]
            targets = [f"{p.get('name') or ''} <{p.get('address') or ''}>" for p in people]
            targets += d.get("envelope", {}).get("rcpt_to", [])
            if not any(_contains(t, self.to) for t in targets):
                return False
        if self.body is not None and not (
            _contains(d.get("text"), self.body) or _contains(d.get("html"), self.body)
        ):
            return False
        return all(self._header_matches(d.get("headers", []), n, v) for n, v in self.headers)

    @staticmethod
    def _header_matches(headers: list[dict[str, str]], name: str, value: str | None) -> bool:
        lname = name.lower()
        for h in headers:
            if h["name"].lower() == lname and (value is None or _contains(h["value"], value)):
                return True
        return False


def _contains(haystack: str | None, needle: str) -> bool:
    return haystack is not None and needle.casefold() in haystack.casefold()


@dataclass(frozen=True, slots=True)
class Since:
    """Only mail after this: an arrival seq (from a message id) and/or a time."""

    seq: int = 0
    time: datetime | None = None

    def admits(self, m: Message) -> bool:
        return m.seq > self.seq and (self.time is None or m.received_at > self.time)


@dataclass
class _Scan:
    examined: set[int] = field(default_factory=set)
    matches: list[Message] = field(default_factory=list)

    def feed(self, rows: Iterable[Message], since: Since, flt: MessageFilter) -> None:
        for row in rows:
            if row.seq in self.examined or not since.admits(row):
                continue
            self.examined.add(row.seq)
            if flt.matches(row):
                self.matches.append(row)


class WaitService:
    def __init__(
        self, *, db: Database, bus: EventBus, max_timeout: float, metrics: Metrics | None = None
    ) -> None:
        self.db = db
        self.bus = bus
        self.max_timeout = max_timeout
        self.metrics = metrics or Metrics()

    def clamp(self, timeout: float) -> float:
        return max(0.0, min(timeout, self.max_timeout))

    async def wait(
        self,
        *,
        tenant_id: str | None,
        inbox_id: str,
        flt: MessageFilter,
        count: int,
        since: Since,
        timeout: float,
    ) -> list[Message]:
        """The first ``count`` matches, oldest first; ``WaitTimeout`` if they don't come in time."""
        with self.metrics.timed_wait("wait"):
            deadline = asyncio.get_running_loop().time() + self.clamp(timeout)
            with self.bus.subscribe(f"inbox:{inbox_id}") as sub:
                scan = _Scan()
                await self._rescan(scan, tenant_id, inbox_id, since, flt)
                while len(scan.matches) < count:
                    remaining = deadline - asyncio.get_running_loop().time()
                    if remaining <= 0 or not await sub.wait(remaining):
                        raise WaitTimeout(
                            f"{len(scan.matches)} of {count} matching messages arrived "
                            f"within {self.clamp(timeout):g} s"
                        )
                    events, rescan = sub.drain()
                    if rescan:
                        await self._rescan(scan, tenant_id, inbox_id, since, flt)
                    else:
                        await self._fetch(
                            scan,
                            tenant_id,
                            [e.seq for e in events if isinstance(e, MessageReceived)],
                            since,
                            flt,
                        )
            return sorted(scan.matches, key=lambda m: m.seq)[:count]

    async def quiet(
        self,
        *,
        tenant_id: str | None,
        inbox_id: str,
        flt: MessageFilter,
        since: Since | None,
        timeout: float,
    ) -> None:
        """Return when nothing matching arrived during ``timeout``; ``MailArrived`` carrying
        the offending messages (``.items``) as soon as one does."""
        with self.metrics.timed_wait("quiet"):
            deadline = asyncio.get_running_loop().time() + self.clamp(timeout)
            with self.bus.subscribe(f"inbox:{inbox_id}") as sub:
                if since is None:
                    async with self.db.read() as session:
                        since = Since(
                            seq=await MessageRepository(session, tenant_id).max_seq(inbox_id)
                        )
                else:
                    scan = _Scan()
                    await self._rescan(scan, tenant_id, inbox_id, since, flt)
                    _raise_if_any(scan)
                scan = _Scan()
                while True:
                    remaining = deadline - asyncio.get_running_loop().time()
                    if remaining <= 0 or not await sub.wait(remaining):
                        return
                    events, rescan = sub.drain()
                    if rescan:
                        await self._rescan(scan, tenant_id, inbox_id, since, flt)
                    else:
                        # Any message committed during the window counts, whatever its seq.
                        window = Since(seq=0, time=since.time)
                        await self._fetch(
                            scan,
                            tenant_id,
                            [e.seq for e in events if isinstance(e, MessageReceived)],
                            window,
                            flt,
                        )
                    _raise_if_any(scan)

    async def _rescan(
        self, scan: _Scan, tenant_id: str | None, inbox_id: str, since: Since, flt: MessageFilter
    ) -> None:
        after = since.seq
        while True:
            async with self.db.read() as session:
                rows = await MessageRepository(session, tenant_id).oldest_after(
                    inbox_id=inbox_id,
                    after_seq=after,
                    after_time=since.time,
                    seen=flt.seen,
                    limit=SCAN_PAGE,
                )
            scan.feed(rows, since, flt)
            if len(rows) < SCAN_PAGE:
                return
            after = rows[-1].seq

    async def _fetch(
        self, scan: _Scan, tenant_id: str | None, seqs: list[int], since: Since, flt: MessageFilter
    ) -> None:
        fresh = [s for s in seqs if s not in scan.examined]
        if not fresh:
            return
        async with self.db.read() as session:
            rows = await MessageRepository(session, tenant_id).by_seqs(fresh)
        scan.feed(rows, since, flt)


def _raise_if_any(scan: _Scan) -> None:
    if scan.matches:
        raise MailArrived(sorted(scan.matches, key=lambda m: m.seq))
