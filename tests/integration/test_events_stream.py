"""Server-sent events at /api/v1/events: live events, resume from Last-Event-ID with
nothing lost, filters, heartbeats, rule hits, tenant isolation, and a slow reader dropped."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.api.sse import EventStream
from tests.support import Harness, SseReader, simple_mail


@contextlib.asynccontextmanager
async def stream(
    h: Harness, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> AsyncIterator[SseReader]:
    async with h.http.stream(
        "GET", "/api/v1/events", params=params, headers=headers, timeout=30
    ) as resp:
        assert resp.status_code == 200, await resp.aread()
        assert resp.headers["content-type"].startswith("text/event-stream")
        reader = SseReader(resp)
        opened = await reader.block()
        assert "stream open" in opened.comments  # subscribed: nothing after this is missed
        yield reader


async def test_live_messages_then_resume_loses_nothing(harness: Harness) -> None:
    inbox = await harness.create_inbox(address="sse")
    async with stream(harness) as events:
        for i in range(2):
            await harness.send(
                "app@example.com",
                [inbox["address"]],
                simple_mail(to=inbox["address"], subject=f"live {i}"),
            )
        first = await events.event()
        second = await events.event()
    assert (first.event, second.event) == ("message.received", "message.received")
    assert [first.data["subject"], second.data["subject"]] == ["live 0", "live 1"]
    assert (
        first.data["inbox_id"] == inbox["id"] and first.data["from"]["address"] == "app@example.com"
    )
    assert set(first.data) >= {
        "id",
        "inbox_id",
        "subject",
        "from",
        "to",
        "received_at",
        "seen",
        "size",
        "has_attachments",
    }

    # Disconnected: three more arrive; a reconnect with Last-Event-ID gets exactly those.
    for i in range(3):
        await harness.send(
            "app@example.com",
            [inbox["address"]],
            simple_mail(to=inbox["address"], subject=f"missed {i}"),
        )
    assert second.id is not None
    async with stream(harness, headers={"Last-Event-ID": second.id}) as events:
        got = [await events.event() for _ in range(3)]
        await harness.send(
            "app@example.com", [inbox["address"]], simple_mail(to=inbox["address"], subject="after")
        )
        got.append(await events.event())
    assert [e.data["subject"] for e in got] == ["missed 0", "missed 1", "missed 2", "after"]
    ids = [e.id for e in got]
    assert len(set(ids)) == 4 and ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))

    # since=0-0 replays the whole history, oldest first.
    async with stream(harness, params={"since": "0-0", "types": "message.received"}) as events:
        replayed = [(await events.event()).data["subject"] for _ in range(6)]
    assert replayed == ["live 0", "live 1", "missed 0", "missed 1", "missed 2", "after"]


async def test_inbox_filter_and_delivery_updates(harness: Harness) -> None:
    a = await harness.create_inbox(address="sse-a")
    b = await harness.create_inbox(address="sse-b")
    async with stream(harness, params={"inbox_id": a["id"]}) as events:
        await harness.send(
            "x@example.com", [b["address"]], simple_mail(to=b["address"], subject="for b")
        )
        resp = await harness.http.post(
            f"/api/v1/inboxes/{a['id']}/send",
            json={"to": [b["address"]], "subject": "a to b", "text": "hi"},
        )
        assert resp.status_code == 202
        delivery_id = resp.json()["deliveries"][0]["id"]
        states = []
        while "delivered" not in states:
            e = await events.event()
            assert e.event == "delivery.updated", e  # b's mail is not a's event
            assert e.data["id"] == delivery_id
            states.append(e.data["state"])
        assert e.data["events"][-1]["type"] == "delivered"
        await harness.send(
            "x@example.com", [a["address"]], simple_mail(to=a["address"], subject="for a")
        )
        e = await events.event()
    assert e.event == "message.received" and e.data["subject"] == "for a"


async def test_rule_hits_and_type_filter(harness: Harness) -> None:
    inbox = await harness.create_inbox(address="sse-rule")
    rule = (
        await harness.http.post(
            "/api/v1/rules",
            json={
                "match": {"recipient": inbox["address"]},
                "stage": "rcpt",
                "reply": {"code": 550, "enhanced": "5.1.1"},
                "times": 1,
            },
        )
    ).json()
    async with stream(harness, params={"types": "rule.hit"}) as events:
        with pytest.raises(Exception, match="550"):
            await harness.send(
                "x@example.com", [inbox["address"]], simple_mail(to=inbox["address"])
            )
        await harness.send("x@example.com", [inbox["address"]], simple_mail(to=inbox["address"]))
        hit = await events.event()
        assert hit.event == "rule.hit" and hit.data["id"] == rule["id"] and hit.data["hits"] == 1
        with pytest.raises(TimeoutError):  # the accepted message is not a rule.hit event
            await events.event(timeout=0.5)


@pytest.mark.parametrize("settings_overrides", [{"sse_heartbeat": 0.2}])
async def test_heartbeat_keeps_an_idle_stream_alive(harness: Harness) -> None:
    async with stream(harness) as events:
        block = await events.block(timeout=5)
    assert block.event is None and block.comments == ["heartbeat"]


async def test_bad_requests(harness: Harness) -> None:
    http = harness.http
    r = await http.get("/api/v1/events", params={"types": "message.sent"})
    assert r.status_code == 422 and "message.sent" in r.json()["detail"]
    r = await http.get("/api/v1/events", headers={"Last-Event-ID": "garbage"})
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"
    r = await http.get(
        "/api/v1/events", params={"inbox_id": "00000000-0000-4000-8000-000000000009"}
    )
    assert r.status_code == 404 and r.json()["error"] == "not_found"


async def test_streams_are_tenant_scoped(harness: Harness) -> None:
    keys = harness.runtime.keys()
    a = {"Authorization": f"Bearer {(await keys.create('a'))[1]}"}
    b = {"Authorization": f"Bearer {(await keys.create('b'))[1]}"}
    assert (await harness.http.get("/api/v1/events")).status_code == 401
    box_a = (await harness.http.post("/api/v1/inboxes", json={"address": "ta"}, headers=a)).json()
    box_b = (await harness.http.post("/api/v1/inboxes", json={"address": "tb"}, headers=b)).json()
    r = await harness.http.get("/api/v1/events", params={"inbox_id": box_a["id"]}, headers=b)
    assert r.status_code == 404
    async with stream(harness, headers=b) as events:
        await harness.send(
            "x@example.com", [box_a["address"]], simple_mail(to=box_a["address"], subject="secret")
        )
        await harness.send(
            "x@example.com", [box_b["address"]], simple_mail(to=box_b["address"], subject="mine")
        )
        e = await events.event()
    assert e.data["subject"] == "mine"
    async with stream(harness, params={"since": "0-0"}, headers=b) as events:
        assert (await events.event()).data["subject"] == "mine"
        with pytest.raises(TimeoutError):
            await events.event(timeout=0.5)


async def test_a_client_that_stops_reading_is_dropped() -> None:
    """The outermost seam: an ASGI ``send`` that never completes (a full socket)."""
    produced = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal produced
        while True:
            produced += 1
            yield b"data: x\n\n"

    sent: list[dict[str, Any]] = []
    stuck = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body":
            await stuck.wait()  # never set: the client reads nothing

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()
        return {}

    response = EventStream(chunks(), write_timeout=0.2)
    await asyncio.wait_for(response({"type": "http"}, receive, send), timeout=5)
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    assert produced == 1  # dropped at the first stuck write; no unbounded buffering


async def test_disconnect_releases_the_subscription(harness: Harness) -> None:
    bus = harness.runtime.bus
    before = bus.subscriber_count
    async with stream(harness):
        assert bus.subscriber_count == before + 1
    async with asyncio.timeout(5):
        while bus.subscriber_count != before:  # released by the server task, not a sleep
            await bus.until_subscribers("tenant:none", 0)
            await asyncio.sleep(0)
