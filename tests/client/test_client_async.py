"""The asyncio client against a real `mailharness serve` (SQLite and Postgres), and
the public surface: both clients expose the same methods with the same parameters."""

from __future__ import annotations

import asyncio
import inspect
from datetime import UTC, datetime

import pytest
from mailharness import (
    AsyncMailharness,
    AuthError,
    ConnectionFailed,
    DeliveryStateConflict,
    Mailharness,
    NotFound,
    QuietViolation,
    WaitTimeout,
)
from mailharness._server import free_port

from tests.client.conftest import Live


async def test_async_flow(live: Live) -> None:
    async with AsyncMailharness(live.url, live.key) as mh:
        inbox = await mh.create_inbox(name="async")
        assert (await mh.get_inbox(inbox.id)).address == inbox.address

        # the wait is open before the mail is sent, and returns as soon as it is stored
        wait = asyncio.create_task(mh.wait_for(inbox, subject="Reset", timeout=20))
        await asyncio.sleep(0)  # let the request go out first
        await asyncio.to_thread(
            live.send_mail, inbox.address, "Reset your password", "https://a.example/reset/9 77123"
        )
        msg = await wait
        assert msg.link(contains="/reset/") == "https://a.example/reset/9"
        assert msg.code() == "77123"
        assert b"Reset your password" in await mh.raw(msg)
        assert (await mh.mark_seen(msg.id)).seen
        assert [m.id for m in await mh.messages(inbox)] == [msg.id]
        assert [m.id for m in await mh.search(inbox=inbox)] == [msg.id]

        with pytest.raises(WaitTimeout) as caught:
            await mh.wait_for_all(inbox, 2, subject="Reset", timeout=0.3)
        assert caught.value.count == 2 and caught.value.filters == {"subject": "Reset"}
        assert caught.value.inbox_id == inbox.id

        since = datetime.now(UTC)
        quiet = asyncio.create_task(mh.quiet(inbox, since=since, timeout=20))
        await asyncio.to_thread(live.send_mail, inbox.address, "Second")
        with pytest.raises(QuietViolation) as broken:
            await quiet
        assert [m.subject for m in broken.value.messages] == ["Second"]

        await mh.delete_message(msg)
        with pytest.raises(NotFound):
            await mh.get_message(msg.id)
        await mh.empty_inbox(inbox)
        await mh.delete_inbox(inbox)


async def test_async_send_rules_and_deliveries(live: Live) -> None:
    async with AsyncMailharness(live.url, live.key) as mh:
        a, b = await mh.create_inbox(), await mh.create_inbox()
        out = await mh.send(a, to=[b.address], subject="Hop", text="hi")
        done = await mh.wait_for_delivery(out.deliveries[0], state="delivered", timeout=20)
        assert done.state == "delivered"
        assert (await mh.wait_for(b, subject="Hop", timeout=10)).text == "hi\n"
        assert [o.id for o in await mh.sent(a)] == [out.id]
        assert (await mh.outbound(out)).deliveries[0].state == "delivered"
        assert [d.id for d in await mh.deliveries(inbox=a, state="delivered")] == [done.id]

        rule = await mh.create_rule("data", code=554, enhanced="5.7.1", inbox=b)
        assert rule.id in [r.id for r in await mh.rules()]
        out2 = await mh.send(a, to=[b.address], subject="Refused", text="x")
        with pytest.raises(DeliveryStateConflict) as caught:
            await mh.wait_for_delivery(out2.deliveries[0], state="delivered", timeout=20)
        assert caught.value.delivery is not None and caught.value.delivery.state == "bounced"
        assert (await mh.get_rule(rule)).hits == 1
        await mh.delete_rule(rule)
        assert rule.id not in [r.id for r in await mh.rules()]
        await mh.delete_inbox(a)
        await mh.delete_inbox(b)


async def test_async_errors(live: Live) -> None:
    async with AsyncMailharness(live.url, "not-a-key") as bad:
        with pytest.raises(AuthError):
            await bad.list_inboxes()
    async with AsyncMailharness(live.url, live.admin_key) as admin:
        key = await admin.create_key("async-temp")
        assert key.id in [k.id for k in await admin.keys()]
        await admin.revoke_key(key.name)
        assert await admin.ready()
    async with AsyncMailharness(f"http://127.0.0.1:{free_port('127.0.0.1')}") as nowhere:
        with pytest.raises(ConnectionFailed):
            await nowhere.get_inbox("x")


def _public(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(fn)
        for name, fn in vars(cls).items()
        if callable(fn) and not name.startswith("_") and name not in ("close", "aclose", "bind")
    }


def test_sync_and_async_clients_have_the_same_surface() -> None:
    sync, async_ = _public(Mailharness), _public(AsyncMailharness)
    assert sync.keys() == async_.keys()
    assert len(sync) >= 30
    for name, signature in sync.items():
        assert str(signature) == str(async_[name]), name
        assert inspect.iscoroutinefunction(getattr(AsyncMailharness, name)), name
        assert not inspect.iscoroutinefunction(getattr(Mailharness, name)), name
