"""Waits and quiet windows: push-based, race-free, every matcher, timeouts."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.support import Harness, simple_mail


async def _parked_wait(h: Harness, inbox_id: str, **params: Any) -> asyncio.Task[httpx.Response]:
    """Start a wait and return once the server has subscribed it (no sleeping)."""
    before = h.runtime.bus.subscribers(f"inbox:{inbox_id}")
    task = asyncio.create_task(h.http.get(f"/api/v1/inboxes/{inbox_id}/wait", params=params))
    await asyncio.wait_for(
        h.runtime.bus.until_subscribers(f"inbox:{inbox_id}", before + 1), timeout=10
    )
    return task


async def test_wait_started_before_mail_wakes_on_arrival(harness: Harness) -> None:
    inbox = await harness.create_inbox()
    task = await _parked_wait(harness, inbox["id"], timeout=20)
    assert not task.done()
    reply = await harness.send(
        "a@example.com", [inbox["address"]], simple_mail(to=inbox["address"])
    )
    replied = time.perf_counter()
    resp = await task
    woke_after = time.perf_counter() - replied
    assert resp.status_code == 200
    assert resp.json()["items"][0]["submission_id"] == reply.message.rsplit(" ", 1)[-1]
    # Push, not a poll: far below any polling interval (speed itself is measured in bench/).
    assert woke_after < 1.0


async def test_wait_started_after_mail_returns_at_once(harness: Harness) -> None:
    inbox = await harness.create_inbox()
    await harness.send("a@example.com", [inbox["address"]], simple_mail(to=inbox["address"]))
    started = time.perf_counter()
    resp = await harness.http.get(f"/api/v1/inboxes/{inbox['id']}/wait", params={"timeout": 20})
    assert resp.status_code == 200
    assert time.perf_counter() - started < 1.0
    assert len(resp.json()["items"]) == 1


async def test_count_three_sent_concurrently_oldest_first(harness: Harness) -> None:
    inbox = await harness.create_inbox()
    task = await _parked_wait(harness, inbox["id"], timeout=20, count=3)
    await asyncio.gather(
        *(
            harness.send(
                "a@example.com",
                [inbox["address"]],
                simple_mail(to=inbox["address"], subject=f"n{i}"),
            )
            for i in range(3)
        )
    )
    resp = await task
    assert resp.status_code == 200
    items = resp.json()["items"]
    assert sorted(m["subject"] for m in items) == ["n0", "n1", "n2"]
    listed = (await harness.http.get(f"/api/v1/inboxes/{inbox['id']}/messages")).json()["items"]
    assert [m["id"] for m in items] == [m["id"] for m in reversed(listed)]


async def test_wait_and_send_raced_many_times_never_misses(harness: Harness) -> None:
    async def one(i: int) -> int:
        inbox = await harness.create_inbox()
        wait = harness.http.get(f"/api/v1/inboxes/{inbox['id']}/wait", params={"timeout": 20})
        send = harness.send("a@example.com", [inbox["address"]], simple_mail(to=inbox["address"]))
        pair = (wait, send) if i % 2 else (send, wait)
        results = await asyncio.gather(*pair)
        resp = results[0] if i % 2 else results[1]
        assert isinstance(resp, httpx.Response)
        return resp.status_code

    assert await asyncio.gather(*(one(i) for i in range(20))) == [200] * 20


async def test_since_message_id_and_time(harness: Harness) -> None:
    inbox = await harness.create_inbox()
    addr = inbox["address"]
    await harness.send("a@example.com", [addr], simple_mail(to=addr, subject="first"))
    first = (await harness.http.get(f"/api/v1/inboxes/{inbox['id']}/wait")).json()["items"][0]

    task = await _parked_wait(harness, inbox["id"], timeout=20, since=first["id"])
    await harness.send("a@example.com", [addr], simple_mail(to=addr, subject="second"))
    resp = await task
    assert [m["subject"] for m in resp.json()["items"]] == ["second"]

    resp = await harness.http.get(
        f"/api/v1/inboxes/{inbox['id']}/wait",
        params={"since": first["received_at"], "timeout": 5},
    )
    assert [m["subject"] for m in resp.json()["items"]] == ["second"]

    listed = await harness.http.get(
        f"/api/v1/inboxes/{inbox['id']}/messages", params={"since": first["id"]}
    )
    assert [m["subject"] for m in listed.json()["items"]] == ["second"]

    bad = await harness.http.get(
        f"/api/v1/inboxes/{inbox['id']}/wait", params={"since": "yesterday"}
    )
    assert bad.status_code == 422
    assert bad.json()["error"] == "invalid_request"


async def test_each_matcher(harness: Harness) -> None:
    inbox = await harness.create_inbox()
    addr = inbox["address"]
    mails = [
        b"From: Billing <billing@shop.example>\r\nTo: " + addr.encode() + b"\r\n"
        b"Subject: Your invoice 42\r\nX-Kind: invoice\r\n\r\nTotal due: 10 EUR\r\n",
        b"From: Security <security@shop.example>\r\nTo: " + addr.encode() + b"\r\n"
        b"Cc: Boss <boss@shop.example>\r\nSubject: New login\r\nX-Kind: alert\r\n\r\n"
        b"Someone signed in from Berlin\r\n",
    ]
    for raw in mails:
        await harness.send("x@shop.example", [addr], raw)
    url = f"/api/v1/inboxes/{inbox['id']}/wait"

    async def subjects(**params: Any) -> list[str]:
        resp = await harness.http.get(url, params={"timeout": 0, **params})
        if resp.status_code == 408:
            return []
        return [m["subject"] for m in resp.json()["items"]]

    assert await subjects(subject="INVOICE") == ["Your invoice 42"]
    assert await subjects(**{"from": "security@"}) == ["New login"]
    assert await subjects(**{"from": "Billing"}) == ["Your invoice 42"]
    assert await subjects(to="boss@shop") == ["New login"]
    assert await subjects(body="berlin") == ["New login"]
    assert await subjects(header="X-Kind: invoice") == ["Your invoice 42"]
    assert await subjects(header="x-kind") == ["Your invoice 42"]
    assert await subjects(header=["X-Kind: alert", "Cc: boss"]) == ["New login"]
    assert await subjects(subject="invoice", body="berlin") == []
    assert await subjects(count=2, seen=False) == ["Your invoice 42", "New login"]
    first = (await harness.http.get(url, params={"subject": "invoice"})).json()["items"][0]
    await harness.http.patch(f"/api/v1/messages/{first['id']}", json={"seen": True})
    assert await subjects(seen=True) == ["Your invoice 42"]
    assert await subjects(seen=False) == ["New login"]


async def test_timeout_gives_408_after_the_timeout_not_before(harness: Harness) -> None:
    inbox = await harness.create_inbox()
    started = time.perf_counter()
    resp = await harness.http.get(
        f"/api/v1/inboxes/{inbox['id']}/wait", params={"timeout": 1, "subject": "never"}
    )
    elapsed = time.perf_counter() - started
    assert resp.status_code == 408
    assert resp.json()["error"] == "timeout"
    assert 1.0 <= elapsed < 5.0


async def test_non_matching_mail_does_not_end_the_wait(harness: Harness) -> None:
    inbox = await harness.create_inbox()
    addr = inbox["address"]
    task = await _parked_wait(harness, inbox["id"], timeout=20, subject="wanted")
    await harness.send("a@example.com", [addr], simple_mail(to=addr, subject="other"))
    await harness.send("a@example.com", [addr], simple_mail(to=addr, subject="the wanted one"))
    resp = await task
    assert [m["subject"] for m in resp.json()["items"]] == ["the wanted one"]


async def test_quiet_passes_when_nothing_arrives(harness: Harness) -> None:
    inbox = await harness.create_inbox()
    addr = inbox["address"]
    await harness.send("a@example.com", [addr], simple_mail(to=addr, subject="before"))
    started = time.perf_counter()
    resp = await harness.http.get(f"/api/v1/inboxes/{inbox['id']}/quiet", params={"timeout": 1})
    assert resp.status_code == 200
    assert resp.json() == {"items": []}
    assert time.perf_counter() - started >= 1.0


async def test_quiet_breaks_with_409_when_mail_arrives(harness: Harness) -> None:
    inbox = await harness.create_inbox()
    addr = inbox["address"]
    before = harness.runtime.bus.subscribers(f"inbox:{inbox['id']}")
    task = asyncio.create_task(
        harness.http.get(f"/api/v1/inboxes/{inbox['id']}/quiet", params={"timeout": 20})
    )
    await harness.runtime.bus.until_subscribers(f"inbox:{inbox['id']}", before + 1)
    started = time.perf_counter()
    await harness.send("a@example.com", [addr], simple_mail(to=addr, subject="second email"))
    resp = await task
    assert resp.status_code == 409
    body = resp.json()
    assert body["error"] == "mail_arrived"
    assert [m["subject"] for m in body["items"]] == ["second email"]
    assert time.perf_counter() - started < 5


async def test_quiet_with_since_sees_already_stored_mail(harness: Harness) -> None:
    inbox = await harness.create_inbox()
    addr = inbox["address"]
    await harness.send("a@example.com", [addr], simple_mail(to=addr, subject="one"))
    first = (await harness.http.get(f"/api/v1/inboxes/{inbox['id']}/wait")).json()["items"][0]
    await harness.send("a@example.com", [addr], simple_mail(to=addr, subject="two"))
    resp = await harness.http.get(
        f"/api/v1/inboxes/{inbox['id']}/quiet", params={"timeout": 5, "since": first["id"]}
    )
    assert resp.status_code == 409
    assert [m["subject"] for m in resp.json()["items"]] == ["two"]


async def test_wait_on_unknown_inbox_is_404(harness: Harness) -> None:
    for inbox_id in ("00000000-0000-4000-8000-000000000000", "nope"):
        resp = await harness.http.get(f"/api/v1/inboxes/{inbox_id}/wait", params={"timeout": 1})
        assert resp.status_code == 404
        assert resp.json()["error"] == "not_found"


async def test_timeout_is_capped_by_the_server(harness: Harness) -> None:
    inbox = await harness.create_inbox()
    harness.runtime.waits.max_timeout = 0.5
    started = time.perf_counter()
    resp = await harness.http.get(f"/api/v1/inboxes/{inbox['id']}/wait", params={"timeout": 300})
    assert resp.status_code == 408
    assert time.perf_counter() - started < 5
