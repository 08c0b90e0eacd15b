"""The delivery worker (Postfix's qmgr plus its delivery agents).

SUMMARY
    ``DeliveryWorker.run()`` loops: claim due deliveries (leased, fair between
    fresh and retried mail, limited per destination), group them by outbound
    message and destination so recipients sharing a destination share one SMTP
    transaction, and start each group as a task (at most ``concurrency`` run at
    once; the loop goes on claiming while they run), ask the pure retry policy what each
    reply means, and record state + events in one transaction. When nothing is
    due it sleeps until the next due time, a queue event on the bus (new or
    changed deliveries), or ``worker_poll_interval``, whichever comes first.

    Fault rules apply to local delivery too (rcpt and data stages): their
    reply becomes the attempt's reply, so greylisting can be tested end to end.
    Local recipients (harness domains) go through the ingest funnel inside the
    same transaction that records their delivery, so a crash can neither lose
    nor duplicate them. A bounce or expiry puts an RFC 3464 delivery-status
    notification into the sender's inbox, in that same transaction.

    A killed worker loses nothing: its leased rows become claimable again when
    the lease expires; remote deliveries are at-least-once, like any MTA.

CONFIGURATION PARAMETERS
    worker_batch, worker_concurrency, worker_poll_interval, delivery_lease,
    retry_min_backoff, retry_max_backoff, queue_lifetime, relay_*.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.addresses import normalize_address
from app.delivery.queue import Outcome, Queue
from app.delivery.reply import Reply
from app.delivery.retry import RetryPolicy, decide
from app.delivery.transport import OutboundMail, Transport
from app.errors import InboxLimit, MailboxFull, NotFound
from app.events.bus import QUEUE_TOPIC, EventBus, Subscription
from app.faults import FaultEngine, inbox_ids_for
from app.ingest import Envelope, Ingest, publish_deliveries
from app.mail import ParsedMessage
from app.mail.dsn import DsnRecipient, build_dsn
from app.store.models import Delivery, Message, Outbound
from app.store.repositories.inboxes import InboxRepository
from app.store.types import utcnow

log = logging.getLogger(__name__)

LOCAL_REMOTE = "local"


class _LeaseLost(Exception):
    def __init__(self, count: int) -> None:
        super().__init__(f"{count} leases lost")
        self.count = count


class DeliveryWorker:
    def __init__(
        self,
        *,
        queue: Queue,
        ingest: Ingest,
        bus: EventBus,
        transports: dict[str, Callable[[str], Transport]],
        policy: RetryPolicy,
        hostname: str,
        domain: str,
        batch: int = 50,
        concurrency: int = 20,
        poll_interval: float = 5.0,
        rng: random.Random | None = None,
        faults: FaultEngine | None = None,
    ) -> None:
        self.queue = queue
        self.ingest = ingest
        self.db = queue.db
        self.bus = bus
        self.transports = transports
        self.policy = policy
        self.hostname = hostname
        self.domain = domain
        self.batch = batch
        self.poll_interval = poll_interval
        self.rng = rng or random.Random()
        self.faults = faults
        self.owner = f"{hostname}:{uuid.uuid4().hex[:12]}"
        self._slots = asyncio.Semaphore(concurrency)
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending = 0
        self._wake: Subscription | None = None

    # -- loop ------------------------------------------------------------------
    async def run(self) -> None:
        """Claim and dispatch until stopped; in-flight deliveries finish before it returns.

        Dispatching does not wait for deliveries to end: a stalled remote holds one
        of ``concurrency`` slots, never the whole worker. At most ``2 * batch``
        deliveries are claimed and unfinished at a time (the rest wait, unleased)."""
        log.info("delivery worker %s started", self.owner)
        with self.bus.subscribe(QUEUE_TOPIC) as wake:
            self._wake = wake
            while not self._stopping.is_set():
                room = 2 * self.batch - self._pending
                try:
                    if room > 0 and await self.dispatch(limit=min(self.batch, room)):
                        continue
                    timeout = await self._idle_timeout() if room > 0 else self.poll_interval
                except Exception:
                    log.exception("delivery round failed; retrying after the poll interval")
                    timeout = self.poll_interval
                if not self._stopping.is_set():
                    await wake.wait(timeout)  # new work, a finished delivery, or due time
                    wake.drain()
            await self._drain()
            self._wake = None
        log.info("delivery worker %s stopped", self.owner)

    def stop(self) -> None:
        self._stopping.set()
        self.bus.kick_all()

    async def _idle_timeout(self) -> float:
        due = await self.queue.next_wakeup()
        if due is None:
            return self.poll_interval
        return max(0.0, min(self.poll_interval, (due - utcnow()).total_seconds()))

    async def dispatch(self, *, limit: int) -> int:
        """Claim up to ``limit`` due deliveries and start delivering them; returns the count."""
        claimed = await self.queue.claim(owner=self.owner, limit=limit, now=utcnow())
        groups: dict[tuple[str, str, str], list[Delivery]] = defaultdict(list)
        for d in claimed:
            destination = d.recipient.rpartition("@")[2].lower() if d.route == "mx" else d.route
            groups[(d.outbound_id, d.route, destination)].append(d)
        for (_, route, _), deliveries in groups.items():
            self._pending += len(deliveries)
            task = asyncio.create_task(self._deliver_group(route, deliveries))
            self._tasks.add(task)
            task.add_done_callback(functools.partial(self._finished, count=len(deliveries)))
        return len(claimed)

    def _finished(self, task: asyncio.Task[None], *, count: int) -> None:
        self._tasks.discard(task)
        self._pending -= count
        if self._wake is not None:
            self._wake.kick()  # room for more work

    async def _drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def run_once(self) -> int:
        """Claim one batch and wait until it is delivered (tests and tools)."""
        count = await self.dispatch(limit=self.batch)
        await self._drain()
        return count

    # -- one group -------------------------------------------------------------
    async def _deliver_group(self, route: str, deliveries: list[Delivery]) -> None:
        async with self._slots:
            try:
                if route == "local":
                    await self._deliver_local(deliveries)
                else:
                    await self._deliver_remote(route, deliveries)
            except Exception:
                log.exception("delivery of %d recipient(s) crashed", len(deliveries))

    async def _deliver_remote(self, route: str, deliveries: list[Delivery]) -> None:
        async with self.db.read() as session:
            outbound, raw = await Queue.load(session, deliveries[0].outbound_id)
        transport = self._transport(route, deliveries[0].recipient)
        mail = OutboundMail(
            mail_from=outbound.mail_from, recipients=[d.recipient for d in deliveries], raw=raw
        )
        try:
            replies = await transport.deliver(mail)
        except Exception as exc:  # a transport must not raise; if it does, retry later
            log.exception("transport %s raised", route)
            replies = {
                d.recipient: Reply.no_reply(f"transport error: {type(exc).__name__}")
                for d in deliveries
            }
        # One clock reading for the decision and the record: the attempt's time is when
        # its reply came, not when the write lock was free (backoff counts from it too).
        now = utcnow()
        outcomes = self._decide(deliveries, replies, now)
        async with self.db.write() as session:
            updated = await Queue.finish(session, owner=self.owner, outcomes=outcomes, now=now)
            notices = await self._bounce_notices(session, outbound, raw, updated)
        self._announce(outbound, updated, notices)

    async def _deliver_local(self, deliveries: list[Delivery]) -> None:
        async with self.db.read() as session:
            outbound, raw = await Queue.load(session, deliveries[0].outbound_id)
        parsed = await self.ingest.parse(raw)
        faulted = {
            d.recipient: reply
            for d in deliveries
            if (reply := await self._local_fault(outbound.mail_from, d.recipient)) is not None
        }
        try:
            stored, updated, notices = await self._store_local(
                outbound, raw, parsed, deliveries, faulted
            )
        except _LeaseLost as lost:
            log.warning(
                "lost the lease on %d local deliveries; another worker has them", lost.count
            )
            return
        self.ingest.publish(stored)
        self._announce(outbound, updated, notices)

    async def _local_fault(self, sender: str, recipient: str) -> Reply | None:
        """What fault rules say about delivering to a local recipient (rcpt, then data)."""
        if self.faults is None:
            return None
        for stage in ("rcpt", "data"):
            if not await self.faults.has_rules(stage):
                continue
            inbox_ids: list[str] = []
            if await self.faults.wants_inbox_ids(stage):
                inbox_ids = await inbox_ids_for(self.db, [recipient])
            fault = await self.faults.check(
                stage=stage,
                sender=sender,
                recipients=[recipient],
                inbox_ids=inbox_ids,
            )
            if fault is None:
                continue
            if fault.delay:
                await asyncio.sleep(fault.delay)  # a slow local mailbox, on purpose
            if fault.disconnect:
                return Reply.no_reply("connection dropped (fault rule)", LOCAL_REMOTE)
            if not fault.proceeds:
                return Reply(fault.code, fault.enhanced, fault.text, LOCAL_REMOTE)
        return None

    async def _store_local(
        self,
        outbound: Outbound,
        raw: bytes,
        parsed: ParsedMessage,
        deliveries: list[Delivery],
        faulted: dict[str, Reply],
    ) -> tuple[list[Message], list[Delivery], list[Message]]:
        """Store into the recipients' inboxes and record the deliveries in ONE transaction."""
        async with self.db.write() as session:
            stored: list[Message] = []
            replies: dict[str, Reply] = {}
            for d in deliveries:
                if d.recipient in faulted:
                    replies[d.recipient] = faulted[d.recipient]
                    continue
                envelope = Envelope(
                    mail_from=outbound.mail_from, rcpt_to=[d.recipient], helo=self.hostname
                )
                try:
                    async with session.begin_nested():
                        messages = await self.ingest.store(
                            session,
                            raw=raw,
                            parsed=parsed,
                            envelope=envelope,
                            submission_id=outbound.id,
                        )
                except NotFound:
                    replies[d.recipient] = Reply(
                        550, "5.1.1", f"<{d.recipient}>: no such inbox", LOCAL_REMOTE
                    )
                    continue
                except (MailboxFull, InboxLimit) as exc:
                    replies[d.recipient] = _limit_reply(exc)
                    continue
                stored.extend(messages)
                ids = ",".join(m.id for m in messages)
                replies[d.recipient] = Reply(250, "2.0.0", f"Ok: stored as {ids}", LOCAL_REMOTE)
            now = utcnow()
            outcomes = self._decide(deliveries, replies, now)
            updated = await Queue.finish(session, owner=self.owner, outcomes=outcomes, now=now)
            if len(updated) < len(deliveries):
                # Abort the whole transaction: no copies for deliveries another worker owns now.
                raise _LeaseLost(len(deliveries) - len(updated))
            notices = await self._bounce_notices(session, outbound, raw, updated)
        return stored, updated, notices

    def _transport(self, route: str, recipient: str) -> Transport:
        factory = self.transports.get(route)
        if factory is None:
            raise LookupError(f"no transport for route {route}")
        return factory(recipient)

    def _decide(
        self, deliveries: Sequence[Delivery], replies: dict[str, Reply], now: datetime
    ) -> list[Outcome]:
        outcomes = []
        for d in deliveries:
            reply = replies.get(d.recipient) or Reply.no_reply("no reply for this recipient")
            decision = decide(
                self.policy,
                reply,
                attempts=d.attempts + 1,
                queued_at=d.created_at,
                now=now,
                rng=self.rng,
            )
            outcomes.append(Outcome(delivery=d, reply=reply, decision=decision))
            log.info(
                "delivery %s to=%s attempt=%d code=%s state=%s",
                d.id,
                d.recipient,
                d.attempts + 1,
                reply.code,
                decision.state,
            )
        return outcomes

    # -- bounces ---------------------------------------------------------------
    async def _bounce_notices(
        self, session: AsyncSession, outbound: Outbound, raw: bytes, updated: Sequence[Delivery]
    ) -> list[Message]:
        """Store a DSN in the sender's inbox for bounced/expired deliveries (same transaction)."""
        failed = [d for d in updated if d.state in ("bounced", "expired")]
        if not failed or not outbound.mail_from or outbound.source == "dsn":
            return []
        sender = normalize_address(outbound.mail_from)
        found = await InboxRepository(session, None).find_by_addresses([sender])
        if sender not in found:
            return []  # the sender is not one of ours: nowhere to put the notice
        now = utcnow()
        recipients = [
            DsnRecipient(
                address=d.recipient,
                action="failed",
                status=(d.last_response or {}).get("enhanced")
                or ("5.0.0" if d.state == "bounced" else "4.4.7"),
                diagnostic=_diagnostic(d),
                remote_mta=((d.last_response or {}).get("remote") or "").rpartition(":")[0] or None,
                last_attempt=d.updated_at,
            )
            for d in failed
        ]
        dsn = build_dsn(
            original=raw,
            envelope_from=outbound.mail_from,
            to=outbound.mail_from,
            reporting_mta=self.hostname,
            recipients=recipients,
            arrival=outbound.created_at,
            now=now,
            postmaster=f"MAILER-DAEMON@{self.domain}",
            message_id_domain=self.domain,
        )
        parsed = await self.ingest.parse(dsn)
        try:
            async with session.begin_nested():
                return await self.ingest.store(
                    session,
                    raw=dsn,
                    parsed=parsed,
                    envelope=Envelope(mail_from="", rcpt_to=[sender], helo=self.hostname),
                    submission_id=str(uuid.uuid4()),
                )
        except (MailboxFull, InboxLimit) as exc:
            log.info("no delivery-status notice for %s: %s", sender, exc.detail)
            return []

    def _announce(
        self, outbound: Outbound, updated: Sequence[Delivery], notices: list[Message]
    ) -> None:
        self.ingest.publish(notices)
        publish_deliveries(self.bus, updated, inbox_id=outbound.inbox_id)


def _limit_reply(exc: MailboxFull | InboxLimit) -> Reply:
    """The reply a local delivery gets from an inbox quota or the inbox limit."""
    if isinstance(exc, MailboxFull):
        code, _, rest = exc.smtp_reply().partition(" ")
        enhanced, _, text = rest.partition(" ")
        return Reply(int(code), enhanced, text, LOCAL_REMOTE)
    return Reply(452, "4.3.1", exc.detail, LOCAL_REMOTE)


def _diagnostic(d: Delivery) -> str | None:
    last = d.last_response or {}
    if last.get("code") is None:
        return f"X-Mailharness; {last.get('text')}" if last.get("text") else None
    enhanced = f" {last['enhanced']}" if last.get("enhanced") else ""
    return f"smtp; {last['code']}{enhanced} {last.get('text') or ''}".rstrip()
