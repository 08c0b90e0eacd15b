"""Fault rules: scoped, counted atomically, repeatable, at SMTP intake and local delivery."""

from __future__ import annotations

import asyncio
import smtplib
import socket
from typing import Any

import aiosmtplib
import pytest

from tests.support import Harness, simple_mail


async def _rule(h: Harness, **body: Any) -> dict[str, Any]:
    resp = await h.http.post("/api/v1/rules", json=body)
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    return data


async def _try_send(h: Harness, rcpt: str, sender: str = "app@example.com") -> int:
    """One SMTP transaction; returns the first non-2xx reply code, or 250."""
    async with aiosmtplib.SMTP(hostname=h.smtp_host, port=h.smtp_port, start_tls=False) as client:
        try:
            await client.mail(sender)
            await client.rcpt(rcpt)
            return (await client.data(simple_mail(to=rcpt))).code
        except aiosmtplib.SMTPResponseException as exc:
            return exc.code


async def test_rule_crud_and_validation(harness: Harness) -> None:
    inbox = await harness.create_inbox()
    rule = await _rule(
        harness,
        match={"recipient": "*@mailharness.test", "inbox_id": inbox["id"]},
        stage="rcpt",
        reply={"code": 451, "enhanced": "4.7.1", "text": "Greylisted"},
        times=2,
    )
    assert rule["hits"] == 0 and rule["times"] == 2 and rule["action"] == "reply"
    assert rule["match"]["inbox_id"] == inbox["id"]
    assert (await harness.http.get(f"/api/v1/rules/{rule['id']}")).json()["id"] == rule["id"]
    assert [r["id"] for r in (await harness.http.get("/api/v1/rules")).json()["items"]] == [
        rule["id"]
    ]
    bad_bodies: list[dict[str, Any]] = [
        {"stage": "rcpt"},
        {"stage": "rcpt", "reply": {"code": 451, "enhanced": "5.7.1"}},
        {"stage": "mail", "match": {"recipient": "x@y"}, "reply": {"code": 550}},
        {"stage": "rcpt", "reply": {"code": 700}},
        {"stage": "rcpt", "reply": {"code": 451}, "probability": 2},
        {"stage": "later", "reply": {"code": 451}},
        {"stage": "rcpt", "reply": {"code": 451, "text": "two\r\nlines"}},
        {
            "stage": "rcpt",
            "reply": {"code": 451},
            "match": {"inbox_id": "00000000-0000-4000-8000-000000000000"},
        },
    ]
    for body in bad_bodies:
        resp = await harness.http.post("/api/v1/rules", json=body)
        assert resp.status_code == 422, (body, resp.text)
        assert resp.json()["error"] == "invalid_request"
    assert (await harness.http.delete(f"/api/v1/rules/{rule['id']}")).status_code == 204
    assert (await harness.http.get(f"/api/v1/rules/{rule['id']}")).status_code == 404
    assert (await harness.http.delete(f"/api/v1/rules/{rule['id']}")).status_code == 404


async def test_greylisting_seen_by_the_client(harness: Harness) -> None:
    rule = await _rule(
        harness,
        match={"recipient": "grey-*@mailharness.test"},
        stage="rcpt",
        reply={"code": 451, "enhanced": "4.7.1", "text": "Greylisted, come back later"},
        times=2,
    )
    codes = []
    for _ in range(3):

        def send() -> int:
            try:
                with smtplib.SMTP(harness.smtp_host, harness.smtp_port, timeout=10) as c:
                    c.sendmail(
                        "app@example.com",
                        ["grey-1@mailharness.test"],
                        simple_mail(to="grey-1@mailharness.test"),
                    )
                return 250
            except smtplib.SMTPRecipientsRefused as exc:
                code, text = exc.recipients["grey-1@mailharness.test"]
                assert text == b"4.7.1 Greylisted, come back later"
                return int(code)

        codes.append(await asyncio.to_thread(send))
    assert codes == [451, 451, 250]
    assert (await harness.http.get(f"/api/v1/rules/{rule['id']}")).json()["hits"] == 2
    other = await _try_send(harness, "not-grey@mailharness.test")
    assert other == 250


async def test_times_holds_under_20_concurrent_connections(harness: Harness) -> None:
    rule = await _rule(
        harness,
        match={"recipient": "busy@mailharness.test"},
        stage="data",
        reply={"code": 452, "enhanced": "4.2.2", "text": "Mailbox full"},
        times=5,
    )
    codes = await asyncio.gather(*(_try_send(harness, "busy@mailharness.test") for _ in range(20)))
    assert sorted(codes) == [250] * 15 + [452] * 5
    assert (await harness.http.get(f"/api/v1/rules/{rule['id']}")).json()["hits"] == 5
    boxes = (await harness.http.get("/api/v1/inboxes")).json()["items"]
    assert [b["message_count"] for b in boxes if b["address"] == "busy@mailharness.test"] == [15]


async def test_seeded_probability_is_repeatable(harness: Harness) -> None:
    body = {
        "match": {"recipient": "dice@mailharness.test"},
        "stage": "rcpt",
        "reply": {"code": 450, "enhanced": "4.2.0", "text": "Try again"},
        "probability": 0.5,
        "seed": 1234,
    }

    async def pattern() -> list[int]:
        rule = await _rule(harness, **body)
        codes = [await _try_send(harness, "dice@mailharness.test") for _ in range(16)]
        await harness.http.delete(f"/api/v1/rules/{rule['id']}")
        return codes

    first = await pattern()
    second = await pattern()
    assert first == second
    assert set(first) == {250, 450}


async def test_slow_server_rule_makes_a_1s_client_time_out(harness: Harness) -> None:
    await _rule(harness, match={"recipient": "slow@mailharness.test"}, stage="data", delay_ms=2500)

    def send() -> None:
        with smtplib.SMTP(harness.smtp_host, harness.smtp_port, timeout=1) as c:
            c.sendmail(
                "app@example.com",
                ["slow@mailharness.test"],
                simple_mail(to="slow@mailharness.test"),
            )

    with pytest.raises((socket.timeout, TimeoutError, smtplib.SMTPServerDisconnected)):
        await asyncio.to_thread(send)


async def test_disconnect_at_data_leaves_no_partial_message(harness: Harness) -> None:
    inbox = await harness.create_inbox(address="cut")
    await _rule(
        harness, match={"inbox_id": inbox["id"]}, stage="data", action="disconnect", times=1
    )

    def send() -> None:
        with smtplib.SMTP(harness.smtp_host, harness.smtp_port, timeout=10) as c:
            c.sendmail("app@example.com", [inbox["address"]], simple_mail(to=inbox["address"]))

    with pytest.raises(smtplib.SMTPServerDisconnected):
        await asyncio.to_thread(send)
    assert (await harness.http.get(f"/api/v1/inboxes/{inbox['id']}")).json()["message_count"] == 0
    await asyncio.to_thread(send)  # times=1: the next one goes through
    assert (await harness.http.get(f"/api/v1/inboxes/{inbox['id']}")).json()["message_count"] == 1


async def test_connect_and_mail_stage_rules(harness: Harness) -> None:
    await _rule(
        harness,
        match={"sender": "*@spam.example"},
        stage="mail",
        reply={"code": 550, "enhanced": "5.7.1", "text": "Sender blocked"},
    )
    assert await _try_send(harness, "x@mailharness.test", sender="bad@spam.example") == 550
    assert await _try_send(harness, "x@mailharness.test", sender="good@example.com") == 250
    await _rule(
        harness,
        stage="connect",
        reply={"code": 554, "enhanced": "5.3.2", "text": "Not now"},
        times=1,
    )
    with pytest.raises(smtplib.SMTPConnectError) as err:
        await asyncio.to_thread(smtplib.SMTP, harness.smtp_host, harness.smtp_port, timeout=5)
    assert err.value.smtp_code == 554
    assert await _try_send(harness, "x@mailharness.test") == 250


async def test_rules_scoped_to_an_inbox_go_with_it(harness: Harness) -> None:
    inbox = await harness.create_inbox()
    await _rule(harness, match={"inbox_id": inbox["id"]}, stage="rcpt", reply={"code": 550})
    await harness.http.delete(f"/api/v1/inboxes/{inbox['id']}")
    assert (await harness.http.get("/api/v1/rules")).json()["items"] == []


@pytest.mark.parametrize(
    "settings_overrides", [{"retry_min_backoff": 0.2, "retry_max_backoff": 1.0}]
)
async def test_rule_on_local_delivery_defers_then_delivers(harness: Harness) -> None:
    sender = await harness.create_inbox()
    target = await harness.create_inbox(address="greylisted-local")
    rule = await _rule(
        harness,
        match={"inbox_id": target["id"]},
        stage="rcpt",
        reply={"code": 451, "enhanced": "4.7.1", "text": "Greylisted"},
        times=2,
    )
    sent = (
        await harness.http.post(
            f"/api/v1/inboxes/{sender['id']}/send",
            json={"to": [target["address"]], "subject": "grey"},
        )
    ).json()
    resp = await harness.http.get(
        f"/api/v1/deliveries/{sent['deliveries'][0]['id']}/wait",
        params={"state": "delivered", "timeout": 20},
    )
    assert resp.status_code == 200, resp.text
    done = resp.json()
    assert [e["type"] for e in done["events"]] == [
        "queued",
        "attempt",
        "deferred",
        "attempt",
        "deferred",
        "attempt",
        "delivered",
    ]
    deferred = [e for e in done["events"] if e["type"] == "deferred"]
    assert all(
        e["code"] == 451 and e["enhanced"] == "4.7.1" and e["remote"] == "local" for e in deferred
    )
    assert (await harness.http.get(f"/api/v1/rules/{rule['id']}")).json()["hits"] == 2
    msgs = (await harness.http.get(f"/api/v1/inboxes/{target['id']}/messages")).json()["items"]
    assert [m["subject"] for m in msgs] == ["grey"]
