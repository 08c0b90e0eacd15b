"""Unit tests of app.events.bus: topic fan-out, wake-ups, bounded buffers.

Synchronisation is done with asyncio events and tasks, never with sleeps; the
only timeouts are on checks that something does NOT happen, or hang guards.
"""

from __future__ import annotations

import asyncio

import pytest

from app.events.bus import (
    ALL_TOPIC,
    QUEUE_TOPIC,
    DeliveryUpdated,
    EventBus,
    MessageReceived,
    RuleHit,
    Subscription,
)

GUARD = 5.0  # seconds: a hang guard, never reached when the code is right


def received(inbox: str = "a", tenant: str = "t", seq: int = 1) -> MessageReceived:
    return MessageReceived(tenant_id=tenant, inbox_id=inbox, message_id=f"m-{seq}", seq=seq)


def test_event_topics() -> None:
    assert received("box", "ten").topics == ("inbox:box", "tenant:ten", ALL_TOPIC)
    queued = DeliveryUpdated(
        tenant_id="ten", delivery_id="d", outbound_id="o", inbox_id=None, state="queued"
    )
    assert queued.topics == ("delivery:d", "tenant:ten", ALL_TOPIC, QUEUE_TOPIC)
    done = DeliveryUpdated(
        tenant_id="ten", delivery_id="d", outbound_id="o", inbox_id=None, state="delivered"
    )
    assert QUEUE_TOPIC not in done.topics  # a finished delivery does not wake workers
    hit = RuleHit(tenant_id="ten", rule_id="r", inbox_id=None, hits=1)
    assert hit.topics == ("rule:r", "tenant:ten")


def test_publish_without_subscribers_is_a_no_op() -> None:
    bus = EventBus()
    bus.publish(received())
    assert bus.subscriber_count == 0
    assert bus.subscribers("inbox:a") == 0
    # An event published before a subscription exists is not replayed to it.
    with bus.subscribe("inbox:a") as sub:
        assert sub.drain() == ([], False)


def test_subscriber_gets_only_its_topics() -> None:
    bus = EventBus()
    with bus.subscribe("inbox:a") as sub_a, bus.subscribe("tenant:t") as sub_t:
        other_inbox = received(inbox="b", tenant="t", seq=1)
        other_tenant = received(inbox="c", tenant="u", seq=2)
        mine = received(inbox="a", tenant="t", seq=3)
        for event in (other_inbox, other_tenant, mine):
            bus.publish(event)
        assert sub_a.drain() == ([mine], False)
        # The tenant topic sees every inbox of that tenant, not other tenants.
        assert sub_t.drain() == ([other_inbox, mine], False)


def test_subscriber_matching_two_topics_gets_the_event_once() -> None:
    bus = EventBus()
    with bus.subscribe("inbox:a", "tenant:t") as sub:
        event = received(inbox="a", tenant="t")
        bus.publish(event)
        assert sub.drain() == ([event], False)
    # Repeated topics in one subscription are one topic.
    with bus.subscribe("inbox:a", "inbox:a") as sub:
        assert sub.topics == frozenset({"inbox:a"})
        assert bus.subscribers("inbox:a") == 1


def test_every_subscriber_of_a_topic_gets_the_event() -> None:
    bus = EventBus()
    with bus.subscribe("inbox:a") as first, bus.subscribe("inbox:a", "tenant:t") as second:
        assert bus.subscribers("inbox:a") == 2
        assert bus.subscribers("tenant:t") == 1
        assert bus.subscriber_count == 2
        event = received()
        bus.publish(event)
        assert first.drain() == ([event], False)
        assert second.drain() == ([event], False)


def test_drain_returns_events_in_order_and_empties_the_buffer() -> None:
    bus = EventBus()
    with bus.subscribe("inbox:a") as sub:
        events = [received(seq=n) for n in range(1, 6)]
        for event in events:
            bus.publish(event)
        assert sub.drain() == (events, False)
        assert sub.drain() == ([], False)


def test_full_buffer_without_loss_does_not_ask_for_a_rescan() -> None:
    bus = EventBus(buffer=3)
    with bus.subscribe("inbox:a") as sub:
        events = [received(seq=n) for n in range(1, 4)]
        for event in events:
            bus.publish(event)
        assert sub.drain() == (events, False)


def test_overflow_drops_the_oldest_and_asks_for_a_rescan() -> None:
    bus = EventBus(buffer=3)
    with bus.subscribe("inbox:a") as sub:
        events = [received(seq=n) for n in range(1, 6)]
        for event in events:
            bus.publish(event)
        assert sub.drain() == (events[-3:], True)
        # The rescan request is reported once.
        assert sub.drain() == ([], False)
        bus.publish(events[0])
        assert sub.drain() == ([events[0]], False)


def test_overflow_of_one_subscriber_does_not_affect_another() -> None:
    bus = EventBus(buffer=2)
    with bus.subscribe("inbox:a") as slow, bus.subscribe("inbox:a") as fast:
        first, second, third = (received(seq=n) for n in (1, 2, 3))
        bus.publish(first)
        assert fast.drain() == ([first], False)
        bus.publish(second)
        assert fast.drain() == ([second], False)
        bus.publish(third)
        assert fast.drain() == ([third], False)
        assert slow.drain() == ([second, third], True)


async def test_kick_wakes_and_asks_for_a_rescan() -> None:
    bus = EventBus()
    with bus.subscribe("inbox:a") as sub:
        sub.kick()
        assert await sub.wait(GUARD) is True
        assert sub.drain() == ([], True)
        assert sub.drain() == ([], False)


async def test_kick_all_kicks_every_subscription() -> None:
    bus = EventBus()
    with bus.subscribe("inbox:a") as first, bus.subscribe("queue", "tenant:t") as second:
        bus.kick_all()
        for sub in (first, second):
            assert await sub.wait(GUARD) is True
            assert sub.drain() == ([], True)


async def test_wait_times_out_without_events() -> None:
    bus = EventBus()
    with bus.subscribe("inbox:a") as sub:
        bus.publish(received(inbox="other"))
        assert await sub.wait(0.05) is False
        assert sub.drain() == ([], False)


async def test_publish_before_wait_is_not_lost() -> None:
    bus = EventBus()
    with bus.subscribe("inbox:a") as sub:
        event = received()
        bus.publish(event)
        # The flag stays set until a wait consumes it: no lost wake-up. With a
        # lost wake-up this would block for GUARD seconds and return False.
        loop = asyncio.get_running_loop()
        start = loop.time()
        assert await sub.wait(GUARD) is True
        assert loop.time() - start < GUARD / 2
        assert sub.drain() == ([event], False)


async def test_wait_clears_the_flag() -> None:
    bus = EventBus()
    with bus.subscribe("inbox:a") as sub:
        bus.publish(received(seq=1))
        bus.publish(received(seq=2))
        assert await sub.wait(GUARD) is True
        # Two publishes, one wake-up: the flag is cleared by the first wait
        # even though the events are still buffered.
        assert await sub.wait(0.05) is False
        assert sub.drain() == ([received(seq=1), received(seq=2)], False)


async def test_wait_without_timeout_returns_after_publish() -> None:
    bus = EventBus()
    with bus.subscribe("inbox:a") as sub:
        bus.publish(received())
        assert await asyncio.wait_for(sub.wait(None), GUARD) is True


async def test_parked_waiter_is_woken_by_publish() -> None:
    bus = EventBus()
    with bus.subscribe("inbox:a") as sub:
        parked = asyncio.Event()

        async def waiter() -> bool:
            parked.set()
            return await sub.wait(GUARD)

        task = asyncio.create_task(waiter())
        await parked.wait()
        assert not task.done()
        event = received()
        bus.publish(event)
        assert await asyncio.wait_for(task, GUARD) is True
        assert sub.drain() == ([event], False)


async def test_parked_waiter_is_not_woken_by_other_topics() -> None:
    bus = EventBus()
    with bus.subscribe("inbox:a") as sub:
        parked = asyncio.Event()

        async def waiter() -> bool:
            parked.set()
            return await sub.wait(0.1)

        task = asyncio.create_task(waiter())
        await parked.wait()
        bus.publish(received(inbox="b", tenant="u"))
        assert await asyncio.wait_for(task, GUARD) is False


def test_unsubscribe_on_context_exit() -> None:
    bus = EventBus()
    with bus.subscribe("inbox:a", "tenant:t") as sub:
        assert bus.subscribers("inbox:a") == 1
        assert bus.subscriber_count == 1
    assert bus.subscribers("inbox:a") == 0
    assert bus.subscribers("tenant:t") == 0
    assert bus.subscriber_count == 0
    bus.publish(received())
    assert sub.drain() == ([], False)


def test_unsubscribe_when_the_block_raises() -> None:
    bus = EventBus()
    kept: list[Subscription] = []
    with pytest.raises(RuntimeError), bus.subscribe("inbox:a") as sub:
        kept.append(sub)
        raise RuntimeError("boom")
    assert bus.subscribers("inbox:a") == 0
    bus.publish(received())
    assert kept[0].drain() == ([], False)


def test_unsubscribing_one_keeps_the_others() -> None:
    bus = EventBus()
    with bus.subscribe("inbox:a") as staying:
        with bus.subscribe("inbox:a"):
            assert bus.subscribers("inbox:a") == 2
        assert bus.subscribers("inbox:a") == 1
        event = received()
        bus.publish(event)
        assert staying.drain() == ([event], False)


async def test_until_subscribers_returns_at_once_when_already_satisfied() -> None:
    bus = EventBus()
    with bus.subscribe("inbox:a"):
        await asyncio.wait_for(bus.until_subscribers("inbox:a", 1), GUARD)
    await asyncio.wait_for(bus.until_subscribers("inbox:a", 0), GUARD)


async def test_until_subscribers_returns_when_a_subscription_appears() -> None:
    bus = EventBus()
    parked = asyncio.Event()

    async def watch() -> None:
        parked.set()
        await bus.until_subscribers("inbox:a", 1)

    task = asyncio.create_task(watch())
    await parked.wait()  # the watcher runs up to its condition wait in this step
    assert not task.done()
    with bus.subscribe("inbox:other"):
        pass
    with bus.subscribe("inbox:a"):
        await asyncio.wait_for(task, GUARD)


async def test_until_subscribers_counts_subscriptions() -> None:
    bus = EventBus()
    parked_two = asyncio.Event()
    parked_one = asyncio.Event()

    async def watch(count: int, parked: asyncio.Event) -> None:
        parked.set()
        await bus.until_subscribers("inbox:a", count)

    two = asyncio.create_task(watch(2, parked_two))
    await parked_two.wait()
    one = asyncio.create_task(watch(1, parked_one))
    await parked_one.wait()
    with bus.subscribe("inbox:a"):
        # Both watchers are woken by the same notification, the one for two
        # subscribers first: by the time the one for one subscriber has
        # returned, the other has re-checked and must still be waiting.
        await asyncio.wait_for(one, GUARD)
        assert not two.done()
        with bus.subscribe("inbox:a", "tenant:t"):
            await asyncio.wait_for(two, GUARD)
