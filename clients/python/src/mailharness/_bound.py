"""``BoundInbox``: one inbox plus the client it lives on, for short test code.

    inbox = mh.bind(mh.create_inbox())        # or the pytest fixture ``inbox``
    msg = inbox.wait_for(subject="Reset your password", timeout=10)

It remembers every wait and quiet call it made (filters, count, timeout, outcome;
``pending`` while one runs), so the pytest plugin can show on a failure what the
test was waiting for, next to the inbox's recent messages (``report()``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Unpack

from mailharness._errors import MailharnessError, QuietViolation, WaitTimeout, describe_filters
from mailharness._models import Inbox, Message, MessageSummary, Outbound, Page
from mailharness._ops import DEFAULT_WAIT, Filters

if TYPE_CHECKING:
    from mailharness._sync import Mailharness


@dataclass
class WaitRecord:
    """One wait/quiet call: what it asked for and how it ended (None while pending)."""

    kind: str
    filters: dict[str, Any]
    count: int
    timeout: float
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    outcome: str | None = None

    def describe(self) -> str:
        wanted = describe_filters(self.filters) or "any message"
        count = f", count={self.count}" if self.kind == "wait_for_all" else ""
        state = self.outcome or "PENDING (no answer yet)"
        started = self.started_at.strftime("%H:%M:%S.%f")[:-3]
        return f"{self.kind}({wanted}{count}, timeout={self.timeout:g}s) at {started}Z: {state}"


class BoundInbox:
    """An inbox bound to a synchronous client; ``id`` and ``address`` as on ``Inbox``."""

    def __init__(self, client: Mailharness, inbox: Inbox) -> None:
        self.client = client
        self.inbox = inbox
        self.waits: list[WaitRecord] = []

    @property
    def id(self) -> str:
        return self.inbox.id

    @property
    def address(self) -> str:
        return self.inbox.address

    def __repr__(self) -> str:
        return f"BoundInbox({self.address!r}, id={self.id!r})"

    @contextmanager
    def _recording(self, kind: str, filters: Filters, count: int, timeout: float) -> Iterator[None]:
        record = WaitRecord(kind, dict(filters), count, timeout)
        self.waits.append(record)
        try:
            yield
        except WaitTimeout as exc:
            record.outcome = f"timed out ({exc.detail})"
            raise
        except QuietViolation as exc:
            record.outcome = f"broken by {len(exc.messages)} message(s)"
            raise
        except BaseException as exc:
            record.outcome = f"failed: {type(exc).__name__}: {exc}"
            raise
        record.outcome = "ok"

    def wait_for(self, *, timeout: float = DEFAULT_WAIT, **filters: Unpack[Filters]) -> Message:
        """The first matching message; ``WaitTimeout`` after ``timeout`` seconds."""
        with self._recording("wait_for", filters, 1, timeout):
            return self.client.wait_for(self, timeout=timeout, **filters)

    def wait_for_all(
        self, count: int, *, timeout: float = DEFAULT_WAIT, **filters: Unpack[Filters]
    ) -> list[Message]:
        """The first ``count`` matching messages, oldest first."""
        with self._recording("wait_for_all", filters, count, timeout):
            return self.client.wait_for_all(self, count, timeout=timeout, **filters)

    def quiet(self, *, timeout: float = DEFAULT_WAIT, **filters: Unpack[Filters]) -> None:
        """Assert that no matching mail arrives for ``timeout`` seconds."""
        with self._recording("quiet", filters, 0, timeout):
            self.client.quiet(self, timeout=timeout, **filters)

    def messages(self, *, limit: int | None = None) -> Page[MessageSummary]:
        """This inbox's messages, newest first."""
        return self.client.messages(self, limit=limit)

    def send(
        self,
        *,
        to: Sequence[str],
        subject: str = "",
        text: str | None = None,
        html: str | None = None,
    ) -> Outbound:
        """Send from this inbox (``Mailharness.send`` takes cc, attachments, ...)."""
        return self.client.send(self, to=to, subject=subject, text=text, html=html)

    def empty(self) -> None:
        self.client.empty_inbox(self)

    def refresh(self) -> Inbox:
        self.inbox = self.client.get_inbox(self)
        return self.inbox

    def delete(self) -> None:
        self.client.delete_inbox(self)

    def report(self, *, recent: int = 10) -> str:
        """The inbox, its newest messages and its waits, as text for a failure report."""
        lines = [f"inbox {self.address} (id {self.id})"]
        try:
            page = self.client.messages(self, limit=recent)
        except MailharnessError as exc:
            lines.append(f"recent messages: could not be listed ({exc})")
        else:
            if not page.items:
                lines.append("recent messages: none")
            else:
                lines.append(f"recent messages (newest first, up to {recent}):")
                for m in page.items:
                    at = m.received_at.strftime("%H:%M:%S.%f")
                    sender = str(m.from_) if m.from_ else "?"
                    lines.append(f"  {at} from {sender}: {m.subject!r}")
        if self.waits:
            pending = [w for w in self.waits if w.outcome is None]
            label = "pending wait" if pending else "last wait"
            lines.append(f"{label}: {(pending or self.waits)[-1].describe()}")
            if len(self.waits) > 1:
                lines.append("all waits:")
                lines.extend(f"  {w.describe()}" for w in self.waits)
        else:
            lines.append("waits: none")
        return "\n".join(lines)
