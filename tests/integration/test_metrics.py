"""GET /metrics: Prometheus text that parses, with counts that move as work is done."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import Harness, WebhookReceiver, simple_mail


async def scrape(h: Harness) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = await h.http.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(resp.text):
        assert family.name.startswith("mailharness_"), family.name
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


async def test_counts_move(harness: Harness) -> None:
    before = await scrape(harness)
    assert before[("mailharness_messages_stored_total", ())] == 0
    assert before[("mailharness_deliveries", (("state", "delivered"),))] == 0
    assert before[("mailharness_queue_depth", ())] == 0

    receiver = await WebhookReceiver().start()
    try:
        inbox = await harness.create_inbox(address="metered")
        await harness.http.post(
            "/api/v1/webhooks", json={"url": receiver.url, "events": ["message.received"]}
        )
        await harness.http.post(
            "/api/v1/rules",
            json={
                "match": {"sender": "bad@example.com"},
                "stage": "mail",
                "reply": {"code": 550, "enhanced": "5.7.1"},
            },
        )
        for i in range(2):
            await harness.send(
                "app@example.com",
                [inbox["address"]],
                simple_mail(to=inbox["address"], subject=f"m{i}"),
            )
        with pytest.raises(Exception, match="550"):
            await harness.send(
                "bad@example.com", [inbox["address"]], simple_mail(to=inbox["address"])
            )
        assert (
            await harness.http.get(f"/api/v1/inboxes/{inbox['id']}/wait", params={"subject": "m1"})
        ).status_code == 200
        assert (
            await harness.http.get(
                f"/api/v1/inboxes/{inbox['id']}/wait", params={"subject": "zz", "timeout": 0}
            )
        ).status_code == 408
        sent = await harness.http.post(
            f"/api/v1/inboxes/{inbox['id']}/send",
            json={"to": ["someone@elsewhere.example"], "subject": "out"},
        )
        delivery = sent.json()["deliveries"][0]
        r = await harness.http.get(
            f"/api/v1/deliveries/{delivery['id']}/wait", params={"state": "held"}
        )
        assert r.status_code == 200
        await receiver.next()
        await receiver.next()
        await harness.runtime.webhook_dispatcher.until_recorded(2)
    finally:
        await receiver.stop()

    after = await scrape(harness)
    assert after[("mailharness_messages_stored_total", ())] == 2
    assert after[("mailharness_smtp_sessions_total", (("result", "accepted"),))] >= 3
    assert (
        after[("mailharness_smtp_transactions_total", (("code", "250"), ("result", "accepted")))]
        == 2
    )
    assert (
        after[("mailharness_smtp_transactions_total", (("code", "550"), ("result", "rejected")))]
        == 1
    )
    assert after[("mailharness_wait_calls_total", (("kind", "wait"), ("outcome", "matched")))] == 1
    assert after[("mailharness_wait_calls_total", (("kind", "wait"), ("outcome", "timeout")))] == 1
    assert (
        after[("mailharness_wait_calls_total", (("kind", "delivery"), ("outcome", "matched")))] == 1
    )
    assert (
        after[("mailharness_wait_seconds_count", (("kind", "wait"), ("outcome", "timeout")))] == 1
    )
    assert after[("mailharness_deliveries", (("state", "held"),))] == 1
    assert after[("mailharness_webhook_attempts_total", (("outcome", "success"),))] == 2
    assert after[("mailharness_webhook_calls", (("state", "delivered"),))] == 2
    assert after[("mailharness_queue_oldest_due_age_seconds", ())] == 0


async def test_queue_depth_and_oldest_due(harness: Harness) -> None:
    harness.runtime.worker.stop()  # nothing takes the queue: mail waits, due
    inbox = await harness.create_inbox(address="queued-up")
    for _ in range(3):
        resp = await harness.http.post(
            f"/api/v1/inboxes/{inbox['id']}/send", json={"to": [inbox["address"]], "subject": "q"}
        )
        assert resp.status_code == 202
    first = await scrape(harness)
    assert first[("mailharness_queue_depth", ())] == 3
    assert first[("mailharness_deliveries", (("state", "queued"),))] == 3
    second = await scrape(harness)
    assert (
        second[("mailharness_queue_oldest_due_age_seconds", ())]
        > first[("mailharness_queue_oldest_due_age_seconds", ())]
    )
