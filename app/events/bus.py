"""In-process publish/subscribe bus with bounded, drop-slow subscriptions.

SUMMARY
    ``publish(event)`` never blocks and never awaits: it appends the event to
    each matching subscription's bounded buffer and sets its wake-up flag. A
    subscription whose buffer is full loses the oldest events and is told to
    re-read the store (a slow consumer never slows ingest). With several
    processes on one Postgres, ``forward_to`` hands each event to the
    LISTEN/NOTIFY bridge, which delivers other processes' events locally.

    Waiters follow one discipline: subscribe first, then query the store, then
    ``await sub.wait(timeout)``; ``wait`` clears the flag before returning, so
    an event published between the query and the await is never missed.

INPUTS / OUTPUTS
    Events are small frozen dataclasses carrying ids, never bodies: consumers
    read bodies from the store.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

DEFAULT_BUFFER = 1000


@dataclass(frozen=True, slots=True)
class MessageReceived:
    tenant_id: str
    inbox_id: str
    message_id: str
    seq: int

    @property
    def topics(self) -> tuple[str, ...]:
        return (f"inbox:{self.inbox_id}", f"tenant:{self.tenant_id}", ALL_TOPIC)


@dataclass(frozen=True, slots=True)
class DeliveryUpdated:
    tenant_id: str
    delivery_id: str
    outbound_id: str
    inbox_id: str | None
    state: str

    @property
    def topics(self) -> tuple[str, ...]:
        base = (f"delivery:{self.delivery_id}", f"tenant:{self.tenant_id}", ALL_TOPIC)
        # Only work for a worker wakes workers (not their own "delivered" news).
        return (*base, QUEUE_TOPIC) if self.state in ("queued", "deferred") else base


@dataclass(frozen=True, slots=True)
class RuleHit:
    """A fault rule applied (its ``hits`` is the count after this one)."""

    tenant_id: str
    rule_id: str
    inbox_id: str | None
    hits: int

    @property
    def topics(self) -> tuple[str, ...]:
        return (f"rule:{self.rule_id}", f"tenant:{self.tenant_id}")


ALL_TOPIC = "*"
"""Every message and delivery event is published here too (the webhook fan-out)."""

QUEUE_TOPIC = "queue"
"""Deliveries that became queued or deferred are published here too: the workers'
wake-up channel."""

Event = MessageReceived | DeliveryUpdated | RuleHit


class Subscription:
    """A bounded buffer of events plus a wake-up flag."""

    def __init__(self, topics: Iterable[str], buffer: int) -> None:
        self.topics = frozenset(topics)
        self._events: collections.deque[Event] = collections.deque(maxlen=buffer)
        self._flag = asyncio.Event()
        self._rescan = False

    def _push(self, event: Event) -> None:
        if len(self._events) == self._events.maxlen:
            self._rescan = True  # events were lost: the consumer must re-read the store
        self._events.append(event)
        self._flag.set()

    def kick(self) -> None:
        """Wake the subscriber and ask it to re-read the store (events may be missing)."""
        self._rescan = True
        self._flag.set()

    async def wait(self, timeout: float | None) -> bool:
        """Wait until something was published (or a kick); False when ``timeout`` passed."""
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
        # that races its timeout, leaving a cancelled stream running.
        try:
            async with asyncio.timeout(timeout):
                await self._flag.wait()
        except TimeoutError:
            return False
        self._flag.clear()
        return True

    def drain(self) -> tuple[list[Event], bool]:
        """The buffered events, and whether the consumer must re-read the store instead."""
        events = list(self._events)
        self._events.clear()
        rescan, self._rescan = self._rescan, False
        return events, rescan


class EventBus:
    """Topic-keyed fan-out within one process."""

    def __init__(self, *, buffer: int = DEFAULT_BUFFER) -> None:
        self._buffer = buffer
        self._by_topic: dict[str, set[Subscription]] = collections.defaultdict(set)
        self._changed = asyncio.Condition()
        self._watchers = 0
        self._forward: Callable[[Event], None] | None = None

    def forward_to(self, forward: Callable[[Event], None] | None) -> None:
        """Also hand every locally published event to ``forward`` (the Postgres bridge)."""
        self._forward = forward

    @contextlib.contextmanager
    def subscribe(self, *topics: str) -> Iterator[Subscription]:
        sub = Subscription(topics, self._buffer)
        for topic in sub.topics:
            self._by_topic[topic].add(sub)
        self._notify_changed()
        try:
            yield sub
        finally:
            for topic in sub.topics:
                subs = self._by_topic.get(topic)
                if subs is not None:
                    subs.discard(sub)
                    if not subs:
                        del self._by_topic[topic]
            self._notify_changed()

    def _notify_changed(self) -> None:
        async def notify() -> None:
            async with self._changed:
                self._changed.notify_all()

        if self._watchers:  # only when someone awaits a subscriber count
            asyncio.get_running_loop().create_task(notify())

    def subscribers(self, topic: str) -> int:
        return len(self._by_topic.get(topic, ()))

    async def until_subscribers(self, topic: str, count: int) -> None:
        """Return once ``topic`` has at least ``count`` subscribers (used by tests and
        benchmarks to know a waiter is parked, without sleeping)."""
        self._watchers += 1
        try:
            async with self._changed:
                await self._changed.wait_for(lambda: self.subscribers(topic) >= count)
        finally:
            self._watchers -= 1

    def publish(self, event: Event) -> None:
        """Fan out to this process's subscribers, and to other processes if bridged."""
        self.deliver_local(event)
        if self._forward is not None:
            self._forward(event)

    def deliver_local(self, event: Event) -> None:
        """Fan out to this process's subscribers only (events from the bridge)."""
        delivered: set[int] = set()
        for topic in event.topics:
            for sub in self._by_topic.get(topic, ()):
                if id(sub) not in delivered:
                    delivered.add(id(sub))
                    sub._push(event)

    def kick_all(self) -> None:
        for subs in self._by_topic.values():
            for sub in subs:
                sub.kick()

    @property
    def subscriber_count(self) -> int:
        return len({id(s) for subs in self._by_topic.values() for s in subs})
