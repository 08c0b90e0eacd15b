"""Per-inbox quotas (message count and raw bytes), enforced inside the storing transaction.

SUMMARY
    ``InboxQuota.session(session)`` gives a ``QuotaTransaction`` for one
    store transaction. ``admit(messages)`` is called before the rows of one
    SMTP transaction (or one local delivery) are written: a message bigger
    than the whole byte quota raises ``MailboxFull(permanent=True)`` (SMTP
    ``552 5.2.2``: it can never fit); with the ``refuse`` policy a message
    that would take its inbox over either quota raises ``MailboxFull``
    (``452 4.2.2``: try later). Admitted messages count as pending, so several
    SMTP transactions in one group commit are judged together. With the
    ``evict`` policy ``evict()`` runs after the inserts and deletes the oldest
    messages of every touched inbox beyond the quotas, in the same
    transaction (the retention queries of ``app.store.repositories.retention``).

    Concurrent writers on Postgres (several processes) each judge what they
    see, so under ``refuse`` an inbox can end one or two messages over; the
    ``evict`` policy converges at the next delivery.

CONFIGURATION PARAMETERS
    inbox_max_messages, inbox_max_bytes, inbox_full.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import MailboxFull
from app.store.models import Message
from app.store.repositories import retention


@dataclass(frozen=True, slots=True)
class InboxQuota:
    max_messages: int = 0
    max_bytes: int = 0
    policy: Literal["evict", "refuse"] = "evict"

    @property
    def active(self) -> bool:
        return self.max_messages > 0 or self.max_bytes > 0

    def session(self, session: AsyncSession) -> QuotaTransaction:
        return QuotaTransaction(quota=self, session=session)


@dataclass(slots=True)
class QuotaTransaction:
    quota: InboxQuota
    session: AsyncSession
    # inbox id -> (messages, bytes) stored or admitted in this transaction
    _usage: dict[str, tuple[int, int]] = field(default_factory=dict)
    _touched: set[str] = field(default_factory=set)

    async def admit(self, messages: Sequence[Message]) -> None:
        """Raise ``MailboxFull`` unless every message fits its inbox; else count them."""
        quota = self.quota
        if not quota.active or not messages:
            return
        for message in messages:
            if quota.max_bytes and message.size > quota.max_bytes:
                raise MailboxFull(
                    f"message of {message.size} bytes exceeds the inbox quota of "
                    f"{quota.max_bytes} bytes",
                    permanent=True,
                )
        wanted: dict[str, tuple[int, int]] = {}
        for message in messages:
            count, size = wanted.get(message.inbox_id, (0, 0))
            wanted[message.inbox_id] = (count + 1, size + message.size)
        if quota.policy == "refuse":
            missing = [i for i in wanted if i not in self._usage]
            if missing:
                self._usage.update(await retention.usage(self.session, missing))
            for inbox_id, (count, size) in wanted.items():
                have_count, have_size = self._usage[inbox_id]
                if (quota.max_messages and have_count + count > quota.max_messages) or (
                    quota.max_bytes and have_size + size > quota.max_bytes
                ):
                    raise MailboxFull(
                        "mailbox full: the inbox is at its quota of "
                        + _describe(quota)
                        + ", try again later"
                    )
            for inbox_id, (count, size) in wanted.items():
                have_count, have_size = self._usage[inbox_id]
                self._usage[inbox_id] = (have_count + count, have_size + size)
        self._touched.update(wanted)

    async def evict(self) -> int:
        """``evict`` policy: delete the oldest messages beyond the quotas of the inboxes
        written in this transaction; returns how many went."""
        quota = self.quota
        if not quota.active or quota.policy != "evict":
            return 0
        removed = 0
        for inbox_id in sorted(self._touched):
            thresholds = []
            if quota.max_messages:
                thresholds.append(
                    await retention.count_threshold(self.session, inbox_id, quota.max_messages)
                )
            if quota.max_bytes:
                thresholds.append(
                    await retention.bytes_threshold(self.session, inbox_id, quota.max_bytes)
                )
            cut = max((t for t in thresholds if t is not None), default=None)
            if cut is not None:
                removed += await retention.delete_through(self.session, inbox_id, cut)
        self._touched.clear()
        return removed


def _describe(quota: InboxQuota) -> str:
    parts = []
    if quota.max_messages:
        parts.append(f"{quota.max_messages} messages")
    if quota.max_bytes:
        parts.append(f"{quota.max_bytes} bytes")
    return " / ".join(parts)
