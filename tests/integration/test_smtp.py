"""The SMTP edge over real sockets: capabilities, policy replies, limits, store failure,
byte-exact storage, and clean shutdown of in-flight transactions."""

from __future__ import annotations

import asyncio
import smtplib
from typing import Any

import aiosmtplib
import pytest
from sqlalchemy import text

from tests.support import Harness, simple_mail


async def _client(h: Harness) -> aiosmtplib.SMTP:
    client = aiosmtplib.SMTP(hostname=h.smtp_host, port=h.smtp_port, start_tls=False)
    await client.connect()
    await client.ehlo()
    return client


async def test_ehlo_advertises_extensions(harness: Harness) -> None:
    client = await _client(harness)
    try:
        for ext in ("size", "8bitmime", "smtputf8", "pipelining", "enhancedstatuscodes"):
            assert client.supports_extension(ext), ext
        assert client.esmtp_extensions["size"] == str(50 * 1024 * 1024)
    finally:
        await client.quit()


async def _message_count(h: Harness) -> int:
    inboxes = (await h.http.get("/api/v1/inboxes")).json()["items"]
    return sum(i["message_count"] for i in inboxes)


@pytest.mark.parametrize("settings_overrides", [{"smtp_max_message_size": 4096}])
async def test_oversize_data_is_refused_and_not_stored(harness: Harness) -> None:
    inbox = await harness.create_inbox()
    client = await _client(harness)
    try:
        await client.mail("a@example.com")
        await client.rcpt(inbox["address"])
        big = simple_mail(to=inbox["address"], body="x" * 100 + "\r\n" + ("y" * 70 + "\r\n") * 100)
        with pytest.raises(aiosmtplib.SMTPDataError) as err:
            await client.data(big)
        assert err.value.code == 552
        assert err.value.message.startswith("5.3.4")
        # The session stays usable after the refusal.
        await client.mail("a@example.com")
        await client.rcpt(inbox["address"])
        ok = await client.data(simple_mail(to=inbox["address"]))
        assert ok.code == 250
    finally:
        await client.quit()
    assert await _message_count(harness) == 1


@pytest.mark.parametrize("settings_overrides", [{"smtp_max_message_size": 4096}])
async def test_declared_size_over_limit_is_refused_at_mail(harness: Harness) -> None:
    client = await _client(harness)
    try:
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as err:
            await client.mail("a@example.com", options=["SIZE=999999"])
        assert err.value.code == 552
        assert err.value.message.startswith("5.3.4")
    finally:
        await client.quit()


async def test_bad_addresses_get_precise_replies(harness: Harness) -> None:
    client = await _client(harness)
    try:
        for bad in ("no-at-sign", "a@b@c", "a@", "@example.com", "a@-bad-.com"):
            await client.rset()
            await client.mail("a@example.com")
            resp = await client.execute_command(f"RCPT TO:<{bad}>".encode())
            assert resp.code in (501, 553), (bad, resp)
            assert resp.message.startswith("5.1.3"), resp
        await client.rset()
        resp = await client.execute_command(b"MAIL FROM:<not valid>")
        assert resp.code in (501, 553), resp
        resp = await client.execute_command(b"DATA")
        assert resp.code == 503
    finally:
        await client.quit()
    assert await _message_count(harness) == 0


async def test_null_sender_and_utf8_addresses(harness: Harness) -> None:
    inbox = await harness.create_inbox(address="bounce-box")
    reply = await harness.send(
        "", [inbox["address"]], simple_mail(to=inbox["address"], subject="DSN")
    )
    assert reply.code == 250
    msg = (await harness.http.get(f"/api/v1/inboxes/{inbox['id']}/wait")).json()["items"][0]
    assert msg["envelope"]["mail_from"] == ""

    utf8_rcpt = "jürgen@bücher.example"
    raw = (
        "From: Zoë <zoë@例え.jp>\r\nTo: jürgen@bücher.example\r\nSubject: Grüße\r\n\r\nHallo\r\n"
    ).encode()
    async with aiosmtplib.SMTP(hostname=harness.smtp_host, port=harness.smtp_port) as client:
        await client.ehlo()
        await client.mail("zoë@例え.jp", options=["SMTPUTF8"], encoding="utf-8")
        await client.rcpt(utf8_rcpt, encoding="utf-8")
        assert (await client.data(raw)).code == 250
    inboxes = (await harness.http.get("/api/v1/inboxes")).json()["items"]
    [box] = [i for i in inboxes if i["address"] == utf8_rcpt]
    got = (await harness.http.get(f"/api/v1/inboxes/{box['id']}/wait")).json()["items"][0]
    assert got["subject"] == "Grüße"
    assert got["from"]["address"] == "zoë@例え.jp"
    assert got["envelope"]["rcpt_to"] == [utf8_rcpt]
    assert (await harness.http.get(f"/api/v1/messages/{got['id']}/raw")).content == raw


@pytest.mark.parametrize("settings_overrides", [{"smtp_strict": True}])
async def test_strict_mode_refuses_unknown_recipients(harness: Harness) -> None:
    inbox = await harness.create_inbox(address="known")
    client = await _client(harness)
    try:
        await client.mail("a@example.com")
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as err:
            await client.rcpt("unknown@mailharness.test")
        assert err.value.code == 550
        assert err.value.message.startswith("5.1.1")
        await client.rcpt(inbox["address"])
        assert (await client.data(simple_mail(to=inbox["address"]))).code == 250
    finally:
        await client.quit()
    inboxes = (await harness.http.get("/api/v1/inboxes")).json()["items"]
    assert [i["address"] for i in inboxes] == ["known@mailharness.test"]


async def test_store_failure_answers_451_never_250(harness: Harness) -> None:
    inbox = await harness.create_inbox()
    async with harness.runtime.db.write() as session:
        await session.execute(text("ALTER TABLE message_raw RENAME TO message_raw_gone"))
    try:
        client = await _client(harness)
        try:
            await client.mail("a@example.com")
            await client.rcpt(inbox["address"])
            with pytest.raises(aiosmtplib.SMTPDataError) as err:
                await client.data(simple_mail(to=inbox["address"]))
            assert err.value.code == 451
            assert err.value.message.startswith("4.3.0")
        finally:
            await client.quit()
    finally:
        async with harness.runtime.db.write() as session:
            await session.execute(text("ALTER TABLE message_raw_gone RENAME TO message_raw"))
    assert (await harness.http.get(f"/api/v1/inboxes/{inbox['id']}")).json()["message_count"] == 0


async def test_raw_bytes_exact_with_dots_bare_lf_and_8bit(harness: Harness) -> None:
    inbox = await harness.create_inbox()
    raw = (
        b"From: a@example.com\r\nTo: " + inbox["address"].encode() + b"\r\nSubject: dots\r\n"
        b"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        b".leading dot\r\n..two dots\r\n.\r\nNa\xefve caf\xe9\r\n"
        b"bare\nline feeds\ninside\r\n"
        b"trailing spaces   \r\n\r\n"
    )
    # smtplib dot-stuffs on the wire; the server must undo it exactly.
    await harness.send_stdlib("a@example.com", [inbox["address"]], raw)
    msg = (await harness.http.get(f"/api/v1/inboxes/{inbox['id']}/wait")).json()["items"][0]
    assert (await harness.http.get(f"/api/v1/messages/{msg['id']}/raw")).content == raw
    assert "Naïve café" in msg["text"]
    assert msg["size"] == len(raw)


async def test_pipelined_transactions(harness: Harness) -> None:
    inbox = await harness.create_inbox()
    reader, writer = await asyncio.open_connection(harness.smtp_host, harness.smtp_port)
    body = simple_mail(to=inbox["address"])
    script = b"EHLO pipe\r\n"
    for _ in range(3):
        script += (
            b"MAIL FROM:<a@example.com>\r\nRCPT TO:<" + inbox["address"].encode() + b">\r\nDATA\r\n"
        )
        script += body + b".\r\n"
    script += b"QUIT\r\n"
    writer.write(script)
    await writer.drain()
    replies = (await asyncio.wait_for(reader.read(), timeout=10)).decode()
    writer.close()
    assert replies.count("250 2.0.0 Ok: queued as") == 3, replies
    assert replies.rstrip().endswith("221 2.0.0 Bye")


async def test_shutdown_finishes_an_in_flight_transaction(db_url: str, tmp_path: Any) -> None:
    from app.runtime import Runtime
    from app.server import Services
    from tests.conftest import make_settings

    services = Services(Runtime.build(make_settings(db_url, tmp_path)))
    await services.start()
    port = services.smtp_port
    client = await asyncio.to_thread(smtplib.SMTP, "127.0.0.1", port, timeout=10)
    try:
        await asyncio.to_thread(client.ehlo)
        await asyncio.to_thread(client.mail, "a@example.com")
        await asyncio.to_thread(client.rcpt, "late@mailharness.test")
        idle = await asyncio.to_thread(smtplib.SMTP, "127.0.0.1", port, timeout=10)
        await asyncio.to_thread(idle.ehlo)
        stopping = asyncio.create_task(services.runtime.smtp.stop(grace=10))
        # New connections are refused while the open transaction may still finish.
        code, resp = await asyncio.to_thread(client.data, simple_mail(to="late@mailharness.test"))
        assert code == 250, resp
        await stopping
        with pytest.raises((ConnectionRefusedError, OSError)):
            await asyncio.to_thread(smtplib.SMTP, "127.0.0.1", port, timeout=2)
        # The idle session was told why it is being closed.
        code, text = await asyncio.to_thread(idle.getreply)
        assert (code, text) == (421, b"4.3.2 Service shutting down")
    finally:
        client.close()
        await services.stop()
    runtime = Runtime.build(make_settings(db_url, tmp_path))
    try:
        page = await runtime.mailbox("00000000-0000-0000-0000-000000000000").list_messages(
            inbox_id=None, limit=10, cursor=None
        )
        assert [m.to[0].address for m in page.items] == ["late@mailharness.test"]
    finally:
        await runtime.close()


async def test_nul_bytes_and_broken_encodings_are_stored_on_every_store(harness: Harness) -> None:
    inbox = await harness.create_inbox()
    raw = (
        b"From: =?utf-8?B?/w==?= <odd@example.com>\r\nTo: " + inbox["address"].encode() + b"\r\n"
        b"Subject: nul\x00inside =?x-unknown?Q?abc?=\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        b"body with \x00 a NUL and \xff\xfe invalid utf-8\r\n"
    )
    reply = await harness.send("odd@example.com", [inbox["address"]], raw)
    assert reply.code == 250
    msg = (await harness.http.get(f"/api/v1/inboxes/{inbox['id']}/wait")).json()["items"][0]
    assert "\x00" not in (msg["subject"] or "") and "\x00" not in (msg["text"] or "")
    assert "inside" in msg["subject"]
    assert (await harness.http.get(f"/api/v1/messages/{msg['id']}/raw")).content == raw
