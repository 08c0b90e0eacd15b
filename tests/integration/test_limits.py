"""Limits with clear errors, over real HTTP and SMTP on both stores: request body size
(413), per-key request rate (429 + Retry-After), concurrent waits per key (429), inboxes
per key (409 inbox_limit), per-inbox message/byte quotas (evict or 452 4.2.2), SMTP
header limits (552 5.3.4), and the catch-all tenant in key mode."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiosmtplib
import pytest

from tests.support import Harness, simple_mail


def _overrides(**values: Any) -> Any:
    return pytest.mark.parametrize("settings_overrides", [values], indirect=False)


@_overrides(api_max_body_size=2048)
async def test_body_over_the_limit_is_413(harness: Harness) -> None:
    ok = await harness.http.post("/api/v1/inboxes", json={"name": "x" * 100})
    assert ok.status_code == 201
    big = {"name": "x" * 5000}
    resp = await harness.http.post("/api/v1/inboxes", json=big)
    assert resp.status_code == 413
    assert resp.json()["error"] == "payload_too_large"
    assert "2048" in resp.json()["detail"]


@_overrides(api_max_body_size=2048)
async def test_chunked_body_is_cut_while_streaming(harness: Harness) -> None:
    """No Content-Length: the body is counted as it arrives. The client sends 4 kB of
    an unfinished chunked body and then nothing: the 413 comes anyway, so the server
    did not wait for (or buffer) the rest."""
    port = int(harness.base_url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /api/v1/inboxes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    for _ in range(4):
        writer.write(b"400\r\n" + b"x" * 1024 + b"\r\n")
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    assert head.startswith(b"HTTP/1.1 413"), head
    length = int(
        next(
            line.split(b":")[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
    )
    body = await reader.readexactly(length)
    assert b'"payload_too_large"' in body
    writer.close()


@_overrides(api_rate_limit=0.01, api_rate_burst=3)
async def test_rate_limit_per_key_answers_429_with_retry_after(harness: Harness) -> None:
    _, key_a = await harness.runtime.keys().create("a")
    _, key_b = await harness.runtime.keys().create("b")
    a = {"Authorization": f"Bearer {key_a}"}
    codes = [(await harness.http.get("/api/v1/inboxes", headers=a)).status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    limited = await harness.http.get("/api/v1/inboxes", headers=a)
    assert limited.status_code == 429
    assert limited.json()["error"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    # Another key has its own bucket.
    other = await harness.http.get("/api/v1/inboxes", headers={"X-API-Key": key_b})
    assert other.status_code == 200


@_overrides(api_rate_limit=0.01, api_rate_burst=2)
async def test_rate_limit_per_client_ip_in_open_mode(harness: Harness) -> None:
    assert (await harness.http.get("/api/v1/inboxes")).status_code == 200
    assert (await harness.http.get("/api/v1/inboxes")).status_code == 200
    resp = await harness.http.get("/api/v1/inboxes")
    assert resp.status_code == 429 and "retry-after" in resp.headers
    # Health checks are not API calls of a tenant: never limited.
    assert (await harness.http.get("/healthz")).status_code == 200


async def test_rate_limit_is_off_by_default_on_loopback(harness: Harness) -> None:
    codes = {(await harness.http.get("/api/v1/inboxes")).status_code for _ in range(60)}
    assert codes == {200}


@_overrides(api_max_waits=2)
async def test_concurrent_waits_per_key_are_capped(harness: Harness) -> None:
    inbox = await harness.create_inbox()
    url = f"/api/v1/inboxes/{inbox['id']}/wait"
    topic = f"inbox:{inbox['id']}"
    first = asyncio.create_task(harness.http.get(url, params={"timeout": 30}))
    second = asyncio.create_task(harness.http.get(url, params={"timeout": 30, "subject": "b"}))
    # Both are parked in their wait (and hold their slots).
    await asyncio.wait_for(harness.runtime.bus.until_subscribers(topic, 2), timeout=10)
    third = await harness.http.get(url, params={"timeout": 30})
    assert third.status_code == 429 and third.json()["error"] == "rate_limited"
    delivery = await harness.http.get(
        "/api/v1/deliveries/00000000-0000-4000-8000-000000000000/wait", params={"timeout": 1}
    )
    assert delivery.status_code == 429
    await harness.send("a@example.com", [inbox["address"]], simple_mail(to=inbox["address"]))
    assert (await first).status_code == 200
    # One slot is free again.
    quiet = await harness.http.get(
        f"/api/v1/inboxes/{inbox['id']}/quiet", params={"timeout": 0, "subject": "zz"}
    )
    assert quiet.status_code == 200
    second.cancel()


@_overrides(max_inboxes_per_key=2, smtp_auth_allow_plaintext=True)
async def test_inbox_count_per_key(harness: Harness) -> None:
    _, key_a = await harness.runtime.keys().create("a")
    _, key_b = await harness.runtime.keys().create("b")
    a = {"X-API-Key": key_a}
    for _ in range(2):
        assert (await harness.http.post("/api/v1/inboxes", headers=a)).status_code == 201
    third = await harness.http.post("/api/v1/inboxes", headers=a)
    assert third.status_code == 409
    assert third.json()["error"] == "inbox_limit"
    assert (
        await harness.http.post("/api/v1/inboxes", headers={"X-API-Key": key_b})
    ).status_code == 201
    # Catch-all creation over SMTP (authenticated with the key) counts too.
    reply = await _send_auth(harness, key_a, "new-one@mailharness.test")
    assert reply.startswith("452 4.3.1"), reply


async def _send_auth(h: Harness, key: str, rcpt: str, data: bytes | None = None) -> str:
    async with aiosmtplib.SMTP(hostname=h.smtp_host, port=h.smtp_port, start_tls=False) as c:
        await c.ehlo()
        await c.auth_plain("ci", key)
        await c.mail("app@example.com")
        await c.rcpt(rcpt)
        try:
            resp = await c.data(data or simple_mail(to=rcpt))
        except aiosmtplib.SMTPDataError as exc:
            return f"{exc.code} {exc.message}"
        return f"{resp.code} {resp.message}"


def _smtp_data(h: Harness, rcpt: str, data: bytes) -> str:
    """DATA over a raw socket, so any reply (also 4xx/5xx) is seen as sent."""
    with socket.create_connection((h.smtp_host, h.smtp_port), timeout=30) as sock:
        f = sock.makefile("rwb")

        def cmd(line: bytes | None) -> str:
            if line is not None:
                f.write(line + b"\r\n")
                f.flush()
            reply = b""
            while True:
                got = f.readline()
                reply += got
                if got[3:4] != b"-":
                    return reply.decode().strip()

        cmd(None)
        cmd(b"EHLO fuzz.test")
        cmd(b"MAIL FROM:<app@example.com>")
        rcpt_reply = cmd(b"RCPT TO:<" + rcpt.encode() + b">")
        if not rcpt_reply.startswith("250"):
            return rcpt_reply
        cmd(b"DATA")
        body = data.replace(b"\r\n.", b"\r\n..")
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        return cmd(body + b".")


@_overrides(inbox_max_messages=2, inbox_full="evict")
async def test_inbox_message_quota_evicts_oldest(harness: Harness) -> None:
    inbox = await harness.create_inbox()
    for i in range(4):
        await harness.send(
            "a@example.com", [inbox["address"]], simple_mail(to=inbox["address"], subject=f"m{i}")
        )
    items = (await harness.http.get(f"/api/v1/inboxes/{inbox['id']}/messages")).json()["items"]
    assert [m["subject"] for m in items] == ["m3", "m2"]


@_overrides(inbox_max_bytes=3000, inbox_full="evict")
async def test_inbox_byte_quota_evicts_oldest(harness: Harness) -> None:
    inbox = await harness.create_inbox()
    for i in range(4):
        mail = simple_mail(to=inbox["address"], subject=f"m{i}", body="x" * 1000)
        await harness.send("a@example.com", [inbox["address"]], mail)
    items = (await harness.http.get(f"/api/v1/inboxes/{inbox['id']}/messages")).json()["items"]
    assert [m["subject"] for m in items] == ["m3", "m2"]
    assert sum(m["size"] for m in items) <= 3000
    too_big = simple_mail(to=inbox["address"], subject="huge", body="y" * 4000)
    reply = await asyncio.to_thread(_smtp_data, harness, inbox["address"], too_big)
    assert reply.startswith("552 5.2.2"), reply


@_overrides(inbox_max_messages=2, inbox_full="refuse")
async def test_inbox_quota_refuses_with_452_and_defers_local_delivery(harness: Harness) -> None:
    inbox = await harness.create_inbox()
    for i in range(2):
        await harness.send(
            "a@example.com", [inbox["address"]], simple_mail(to=inbox["address"], subject=f"m{i}")
        )
    reply = await asyncio.to_thread(
        _smtp_data, harness, inbox["address"], simple_mail(to=inbox["address"], subject="m2")
    )
    assert reply.startswith("452 4.2.2"), reply
    items = (await harness.http.get(f"/api/v1/inboxes/{inbox['id']}/messages")).json()["items"]
    assert [m["subject"] for m in items] == ["m1", "m0"]
    # Local delivery of sent mail into the full inbox is deferred with that reply.
    sender = await harness.create_inbox()
    sent = await harness.http.post(
        f"/api/v1/inboxes/{sender['id']}/send", json={"to": [inbox["address"]], "subject": "x"}
    )
    delivery = sent.json()["deliveries"][0]
    got = await harness.http.get(
        f"/api/v1/deliveries/{delivery['id']}/wait", params={"state": "deferred", "timeout": 30}
    )
    assert got.status_code == 200, got.text
    last = got.json()["last_response"]
    assert (last["code"], last["enhanced"]) == (452, "4.2.2")


@_overrides(smtp_max_header_fields=50, smtp_max_header_size=4096)
async def test_smtp_header_limits(harness: Harness) -> None:
    inbox = await harness.create_inbox()
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(60)) + simple_mail(to=inbox["address"])
    reply = await asyncio.to_thread(_smtp_data, harness, inbox["address"], many)
    assert reply.startswith("552 5.3.4") and "too many fields" in reply, reply
    big = b"X-Big: v\r\n" + b" folded\r\n" * 600 + simple_mail(to=inbox["address"])
    reply = await asyncio.to_thread(_smtp_data, harness, inbox["address"], big)
    assert reply.startswith("552 5.3.4") and "too large" in reply, reply
    ok = await asyncio.to_thread(
        _smtp_data, harness, inbox["address"], simple_mail(to=inbox["address"])
    )
    assert ok.startswith("250"), ok


async def test_key_mode_without_catchall_refuses_unknown(harness: Harness) -> None:
    await harness.runtime.keys().create("ci")
    reply = await asyncio.to_thread(
        _smtp_data, harness, "nobody@mailharness.test", simple_mail(to="nobody@mailharness.test")
    )
    assert reply.startswith("550 5.7.1"), reply


@_overrides(catchall_key="catcher")
async def test_key_mode_catchall_goes_to_the_named_keys_tenant(harness: Harness) -> None:
    _, catcher = await harness.runtime.keys().create("catcher")
    _, other = await harness.runtime.keys().create("other")
    reply = await asyncio.to_thread(
        _smtp_data, harness, "fresh@mailharness.test", simple_mail(to="fresh@mailharness.test")
    )
    assert reply.startswith("250"), reply
    mine = (await harness.http.get("/api/v1/inboxes", headers={"X-API-Key": catcher})).json()
    assert [i["address"] for i in mine["items"]] == ["fresh@mailharness.test"]
    assert mine["items"][0]["message_count"] == 1
    theirs = (await harness.http.get("/api/v1/inboxes", headers={"X-API-Key": other})).json()
    assert theirs["items"] == []
    # Revoking the catch-all key restores the refusal at once.
    await harness.runtime.keys().revoke("catcher")
    reply = await asyncio.to_thread(
        _smtp_data, harness, "later@mailharness.test", simple_mail(to="later@mailharness.test")
    )
    assert reply.startswith("550 5.7.1"), reply
