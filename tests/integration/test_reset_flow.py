"""The core user story end to end over real sockets: create an inbox, the app
sends a password-reset mail over SMTP, the test waits server-side and asserts."""

from __future__ import annotations

import asyncio
import re

from tests.support import Harness

RESET_MAIL = (
    b"From: Acme Accounts <no-reply@acme.example>\r\n"
    b"To: {to}\r\n"
    b"Subject: Reset your Acme password\r\n"
    b"Message-ID: <reset-1@acme.example>\r\n"
    b"Date: Sat, 28 Nov 2026 17:05:29 +0100\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/alternative; boundary="b1"\r\n'
    b"\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Your code is 481516. Or open https://acme.example/reset?token=abc&u=42\r\n"
    b"--b1\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"\r\n"
    b'<p>Your code is <b>481516</b>.</p><a href="https://acme.example/reset?token=abc&amp;u=42">Reset</a>\r\n'
    b"--b1--\r\n"
)


async def test_password_reset_flow(harness: Harness) -> None:
    inbox = await harness.create_inbox(address="reset-flow")
    assert inbox["address"] == "reset-flow@mailharness.test"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", inbox["created_at"])

    wait = asyncio.create_task(
        harness.http.get(f"/api/v1/inboxes/{inbox['id']}/wait", params={"timeout": 10})
    )
    raw = RESET_MAIL.replace(b"{to}", inbox["address"].encode())
    reply = await harness.send("no-reply@acme.example", [inbox["address"]], raw)
    assert reply.code == 250
    match = re.fullmatch(r"2\.0\.0 Ok: queued as ([0-9a-f-]{36})", reply.message)
    assert match, reply.message
    submission_id = match.group(1)

    resp = await wait
    assert resp.status_code == 200, resp.text
    [msg] = resp.json()["items"]
    assert msg["subject"] == "Reset your Acme password"
    assert msg["from"] == {"name": "Acme Accounts", "address": "no-reply@acme.example"}
    assert msg["to"] == [{"name": None, "address": inbox["address"]}]
    assert msg["submission_id"] == submission_id
    assert msg["message_id"] == "<reset-1@acme.example>"
    assert msg["date"] == "2026-11-28T16:05:29.000000Z"
    assert msg["codes"] == ["481516"]
    assert msg["links"] == ["https://acme.example/reset?token=abc&u=42"]
    assert "481516" in msg["text"] and "<b>481516</b>" in msg["html"]
    assert msg["envelope"]["mail_from"] == "no-reply@acme.example"
    assert msg["envelope"]["rcpt_to"] == [inbox["address"]]
    assert msg["envelope"]["client_address"] == "127.0.0.1"
    assert msg["envelope"]["tls"] is False
    assert {"name": "Subject", "value": "Reset your Acme password"} in msg["headers"]
    assert msg["parse_error"] is None

    raw_resp = await harness.http.get(f"/api/v1/messages/{msg['id']}/raw")
    assert raw_resp.headers["content-type"] == "message/rfc822"
    assert raw_resp.content == raw

    by_submission = await harness.http.get(
        "/api/v1/messages", params={"submission_id": submission_id}
    )
    assert [m["id"] for m in by_submission.json()["items"]] == [msg["id"]]

    inbox_after = (await harness.http.get(f"/api/v1/inboxes/{inbox['id']}")).json()
    assert inbox_after["message_count"] == 1


async def test_one_transaction_to_three_inboxes_shares_submission(harness: Harness) -> None:
    boxes = [await harness.create_inbox() for _ in range(3)]
    rcpts = [b["address"] for b in boxes]
    raw = (
        b"From: a@example.com\r\nTo: "
        + ", ".join(rcpts).encode()
        + b"\r\nSubject: all\r\n\r\nx\r\n"
    )
    reply = await harness.send("a@example.com", rcpts, raw)
    submission_id = reply.message.rsplit(" ", 1)[-1]
    listed = (
        await harness.http.get("/api/v1/messages", params={"submission_id": submission_id})
    ).json()["items"]
    assert sorted(m["inbox_id"] for m in listed) == sorted(b["id"] for b in boxes)
    for m in listed:
        raw_resp = await harness.http.get(f"/api/v1/messages/{m['id']}/raw")
        assert raw_resp.content == raw


async def test_unknown_address_creates_catch_all_inbox(harness: Harness) -> None:
    raw = b"From: a@example.com\r\nTo: Someone@Example.org\r\nSubject: catch\r\n\r\nx\r\n"
    await harness.send_stdlib("a@example.com", ["Someone@Example.org"], raw)
    inboxes = (await harness.http.get("/api/v1/inboxes")).json()["items"]
    [inbox] = [i for i in inboxes if i["address"] == "someone@example.org"]
    assert inbox["message_count"] == 1
