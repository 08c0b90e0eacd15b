"""Webhooks: signed POSTs per event, retried with backoff until success or failure, every
attempt listed, inbox and tenant scoping, manual redelivery, validation."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.webhooks.signing import verify
from tests.support import Harness, WebhookReceiver, simple_mail

FAST = {"webhook_min_backoff": 0.05, "webhook_max_backoff": 0.2, "webhook_max_attempts": 3}
SECRET = "s3cret-s3cret-s3cret"


@pytest.fixture
async def receiver(request: pytest.FixtureRequest) -> AsyncIterator[WebhookReceiver]:
    statuses = getattr(request, "param", None)
    r = await WebhookReceiver(statuses=statuses).start()
    yield r
    await r.stop()


async def _hook(h: Harness, **body: Any) -> dict[str, Any]:
    resp = await h.http.post("/api/v1/webhooks", json=body)
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    return data


async def test_message_received_is_posted_signed(
    harness: Harness, receiver: WebhookReceiver
) -> None:
    inbox = await harness.create_inbox(address="hooked")
    await harness.send(
        "app@example.com", [inbox["address"]], simple_mail(to=inbox["address"], subject="before")
    )
    hook = await _hook(harness, url=receiver.url, events=["message.received"], secret=SECRET)
    assert hook["secret"] == SECRET and hook["events"] == ["message.received"]
    await harness.send(
        "app@example.com",
        [inbox["address"]],
        simple_mail(to=inbox["address"], subject="Your code 123456"),
    )

    post = await receiver.next()
    assert post.headers["content-type"] == "application/json"
    assert post.headers["x-mailharness-event"] == "message.received"
    assert post.headers["x-mailharness-signature"].startswith("sha256=")
    assert verify(SECRET, post.body, post.headers, now=int(time.time()))
    assert not verify("another-secret-value", post.body, post.headers, now=int(time.time()))
    assert not verify(SECRET, post.body + b" ", post.headers, now=int(time.time()))
    assert not verify(
        SECRET, post.body, post.headers, now=int(time.time()) + 3600
    )  # replayed later
    data = json.loads(post.body)
    assert (
        data["subject"] == "Your code 123456"
    )  # the message stored before the webhook is not sent
    assert data["inbox_id"] == inbox["id"] and data["from"]["address"] == "app@example.com"

    # The secret is shown once; reads never return it.
    got = (await harness.http.get(f"/api/v1/webhooks/{hook['id']}")).json()
    assert got["secret"] is None and got["url"] == receiver.url
    attempts = (await harness.http.get(f"/api/v1/webhooks/{hook['id']}/attempts")).json()["items"]
    await harness.runtime.webhook_dispatcher.until_recorded(1)
    attempts = (await harness.http.get(f"/api/v1/webhooks/{hook['id']}/attempts")).json()["items"]
    assert [(a["attempt"], a["status_code"], a["call_state"]) for a in attempts] == [
        (1, 200, "delivered")
    ]


@pytest.mark.parametrize("settings_overrides", [FAST])
@pytest.mark.parametrize("receiver", [[500, 503]], indirect=True)
async def test_failing_endpoint_is_retried_then_succeeds(
    harness: Harness, receiver: WebhookReceiver
) -> None:
    inbox = await harness.create_inbox(address="flaky")
    hook = await _hook(harness, url=receiver.url, inbox_id=inbox["id"])
    assert len(hook["secret"]) > 30  # generated
    await harness.send("app@example.com", [inbox["address"]], simple_mail(to=inbox["address"]))
    posts = [await receiver.next() for _ in range(3)]
    assert len({p.body for p in posts}) == 1  # the same body each time
    assert len({p.headers["x-mailharness-call-id"] for p in posts}) == 1
    assert all(verify(hook["secret"], p.body, p.headers, now=int(time.time())) for p in posts)
    await harness.runtime.webhook_dispatcher.until_recorded(3)
    attempts = (await harness.http.get(f"/api/v1/webhooks/{hook['id']}/attempts")).json()["items"]
    assert [(a["attempt"], a["status_code"]) for a in attempts] == [(1, 500), (2, 503), (3, 200)]
    assert attempts[0]["response_excerpt"] == "status 500"
    calls = (await harness.http.get(f"/api/v1/webhooks/{hook['id']}/calls")).json()["items"]
    assert [(c["state"], c["attempts"]) for c in calls] == [("delivered", 3)]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("settings_overrides", [FAST])
async def test_dead_endpoint_ends_failed_with_every_attempt_listed(harness: Harness) -> None:
    inbox = await harness.create_inbox(address="dead")
    hook = await _hook(harness, url=f"http://127.0.0.1:{_closed_port()}/hook")
    await harness.send("app@example.com", [inbox["address"]], simple_mail(to=inbox["address"]))
    await harness.runtime.webhook_dispatcher.until_recorded(3)
    attempts = (await harness.http.get(f"/api/v1/webhooks/{hook['id']}/attempts")).json()["items"]
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    assert all(a["status_code"] is None and "ConnectError" in a["error"] for a in attempts)
    calls = (await harness.http.get(f"/api/v1/webhooks/{hook['id']}/calls")).json()["items"]
    assert [(c["state"], c["attempts"], c["next_attempt_at"]) for c in calls] == [
        ("failed", 3, None)
    ]


async def test_delivery_updates_and_inbox_scope(
    harness: Harness, receiver: WebhookReceiver
) -> None:
    a = await harness.create_inbox(address="hook-a")
    b = await harness.create_inbox(address="hook-b")
    await _hook(harness, url=receiver.url + "/a", events=["delivery.updated"], inbox_id=a["id"])
    await _hook(harness, url=receiver.url + "/b", events=["message.received"], inbox_id=b["id"])
    resp = await harness.http.post(
        f"/api/v1/inboxes/{a['id']}/send",
        json={"to": [b["address"]], "subject": "a to b", "text": "hi"},
    )
    delivery_id = resp.json()["deliveries"][0]["id"]
    seen: dict[str, list[Any]] = {"/hook/a": [], "/hook/b": []}
    while not seen["/hook/b"] or "delivered" not in [d["state"] for d in seen["/hook/a"]]:
        post = await receiver.next()
        seen[post.path].append(json.loads(post.body))
    assert all(d["id"] == delivery_id for d in seen["/hook/a"])
    assert seen["/hook/a"][-1]["events"][-1]["type"] == "delivered"
    assert [m["subject"] for m in seen["/hook/b"]] == ["a to b"]
    # Mail to a does not reach b's webhook, and a's webhook takes no messages.
    await harness.send(
        "x@example.com", [a["address"]], simple_mail(to=a["address"], subject="to a")
    )
    await harness.send(
        "x@example.com", [b["address"]], simple_mail(to=b["address"], subject="to b")
    )
    post = await receiver.next()
    assert post.path == "/hook/b" and json.loads(post.body)["subject"] == "to b"


async def test_redeliver_and_delete(harness: Harness, receiver: WebhookReceiver) -> None:
    inbox = await harness.create_inbox(address="again")
    hook = await _hook(harness, url=receiver.url, events=["message.received"])
    await harness.send("x@example.com", [inbox["address"]], simple_mail(to=inbox["address"]))
    first = await receiver.next()
    await harness.runtime.webhook_dispatcher.until_recorded(1)
    call = (await harness.http.get(f"/api/v1/webhooks/{hook['id']}/calls")).json()["items"][0]
    resp = await harness.http.post(f"/api/v1/webhooks/{hook['id']}/calls/{call['id']}/redeliver")
    assert resp.status_code == 202 and resp.json()["state"] == "queued"
    again = await receiver.next()
    assert again.body == first.body
    assert again.headers["x-mailharness-call-id"] == resp.json()["id"] != call["id"]

    assert (await harness.http.delete(f"/api/v1/webhooks/{hook['id']}")).status_code == 204
    assert (await harness.http.get(f"/api/v1/webhooks/{hook['id']}")).status_code == 404
    assert (await harness.http.get("/api/v1/webhooks")).json()["items"] == []


async def test_validation_and_tenant_scope(harness: Harness, receiver: WebhookReceiver) -> None:
    http = harness.http
    for body in (
        {"url": "ftp://example.com/x"},
        {"url": "not a url"},
        {"url": receiver.url, "events": ["message.sent"]},
        {"url": receiver.url, "events": []},
        {"url": receiver.url, "secret": "short"},
        {"url": receiver.url, "inbox_id": "00000000-0000-4000-8000-000000000001"},
        {"url": receiver.url, "payload_format": "nope"},
    ):
        resp = await http.post("/api/v1/webhooks", json=body)
        assert resp.status_code == 422, (body, resp.text)

    keys = harness.runtime.keys()
    ka = {"X-API-Key": (await keys.create("a"))[1]}
    kb = {"X-API-Key": (await keys.create("b"))[1]}
    box_a = (await http.post("/api/v1/inboxes", json={"address": "wa"}, headers=ka)).json()
    hook_b = (await http.post("/api/v1/webhooks", json={"url": receiver.url}, headers=kb)).json()
    assert (await http.get(f"/api/v1/webhooks/{hook_b['id']}", headers=ka)).status_code == 404
    assert (await http.get("/api/v1/webhooks", headers=ka)).json()["items"] == []
    resp = await http.post(
        "/api/v1/webhooks", json={"url": receiver.url, "inbox_id": box_a["id"]}, headers=kb
    )
    assert resp.status_code == 422  # not b's inbox
    hook_a = (
        await http.post("/api/v1/webhooks", json={"url": receiver.url + "/a"}, headers=ka)
    ).json()
    await harness.send("x@example.com", [box_a["address"]], simple_mail(to=box_a["address"]))
    post = await receiver.next()
    assert post.path == "/hook/a" and post.headers["x-mailharness-webhook-id"] == hook_a["id"]
    await harness.runtime.webhook_dispatcher.until_recorded(1)
    assert len(receiver.posts) == 1  # b's webhook got nothing of a's
