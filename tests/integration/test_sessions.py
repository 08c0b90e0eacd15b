"""SMTP session transcripts: intake sessions (plain, STARTTLS, AUTH, refused, cut off)
and outbound relay attempts are recorded command by command with timings, never with
the message data or an AUTH secret, and served by /api/v1/sessions; retention trims
the oldest."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import smtplib
import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP, AuthResult

from app.delivery.transport import OutboundMail, RelayTarget, SmtpTransport
from app.services.sessions import trim_sessions
from app.smtp.transcript import MAX_LINE_CHARS, MAX_LINES, TRUNCATED, Transcript
from tests.support import Harness, RemoteHandler, RemoteServer, simple_mail, start_remote

HOSTNAME = "smtp.harness.test"
USER = "ci-user@example.com"
PASSWORD = "s3cret-Passw0rd-that-must-not-leak"


# --- helpers ----------------------------------------------------------------------------------


async def _flush(h: Harness) -> None:
    """Every session that has ended is stored once this returns (no polling)."""
    recorder = h.runtime.session_recorder
    assert recorder is not None
    await recorder.flush()


async def _list(h: Harness, **params: Any) -> list[dict[str, Any]]:
    await _flush(h)
    resp = await h.http.get("/api/v1/sessions", params=params)
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


async def _get(h: Harness, session_id: str) -> dict[str, Any]:
    resp = await h.http.get(f"/api/v1/sessions/{session_id}")
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


async def _only(h: Harness, **params: Any) -> dict[str, Any]:
    items = await _list(h, **params)
    assert len(items) == 1, items
    assert "lines" not in items[0]
    return await _get(h, items[0]["id"])


def _said(session: dict[str, Any], direction: str) -> list[str]:
    return [line["text"] for line in session["lines"] if line["dir"] == direction]


class Raw:
    """A line-by-line SMTP client on a plain socket: exactly what is written is sent."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, h: Harness) -> Raw:
        reader, writer = await asyncio.open_connection(h.smtp_host, h.smtp_port)
        raw = cls(reader, writer)
        assert (await raw.reply())[0].startswith("220")
        return raw

    async def reply(self) -> list[str]:
        lines = []
        while True:
            line = (await asyncio.wait_for(self.reader.readline(), 10)).decode().rstrip("\r\n")
            lines.append(line)
            if line[3:4] != "-":
                return lines

    async def send(self, line: str | bytes) -> list[str]:
        data = line.encode() if isinstance(line, str) else line
        self.writer.write(data + b"\r\n")
        return await self.reply()

    async def quit(self) -> None:
        assert (await self.send("QUIT"))[-1].startswith("221")
        self.writer.close()

    async def hang_up(self) -> None:
        """Close our side and read until the server has let go (race-free: the server's
        connection_lost runs before its socket is closed, which is our EOF)."""
        self.writer.write_eof()
        await asyncio.wait_for(self.reader.read(), 10)
        self.writer.close()


def _b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


# --- intake -----------------------------------------------------------------------------------


async def test_plain_session_every_command_and_reply_in_order(harness: Harness) -> None:
    inbox = await harness.create_inbox()
    other = await harness.create_inbox()
    body = simple_mail(to=inbox["address"], subject="Secret subject", body="Body not recorded")

    def talk() -> tuple[int, bytes]:
        with smtplib.SMTP(harness.smtp_host, harness.smtp_port, timeout=10) as c:
            c.ehlo("client.example")
            c.mail("app@example.com")
            c.rcpt(inbox["address"])
            return c.data(body)

    code, reply = await asyncio.to_thread(talk)
    assert code == 250
    submission_id = reply.decode().rsplit(" ", 1)[-1]
    await harness.send("app@example.com", [other["address"]], simple_mail(to=other["address"]))

    session = await _only(harness, inbox_id=inbox["id"])
    assert session["direction"] == "inbound"
    assert session["helo"] == "client.example"
    assert session["client_address"].startswith("127.0.0.1:")
    assert session["server_address"] == f"127.0.0.1:{harness.smtp_port}"
    assert session["tls_version"] is None and session["auth_user"] is None
    assert session["submission_ids"] == [submission_id]
    assert session["inbox_ids"] == [inbox["id"]]
    assert session["outbound_id"] is None and session["delivery_ids"] == []
    assert session["started_at"].endswith("Z") and session["ended_at"] >= session["started_at"]

    assert _said(session, "C") == [  # verbatim: smtplib writes lower-case verbs
        "ehlo client.example",
        "mail FROM:<app@example.com>",
        f"rcpt TO:<{inbox['address']}>",
        "data",
        f"<message data: {len(body)} bytes>",
        "QUIT",
    ]
    # Each command followed by its reply(ies), in order.
    flow = [(line["dir"], line["text"].split(" ")[0][:4].upper()) for line in session["lines"]]
    ehlo_lines = [t for d, t in flow if t.startswith("250-")]
    assert flow == [
        ("S", "220"),
        ("C", "EHLO"),
        *[("S", "250-")] * len(ehlo_lines),
        ("S", "250"),
        ("C", "MAIL"),
        ("S", "250"),
        ("C", "RCPT"),
        ("S", "250"),
        ("C", "DATA"),
        ("S", "354"),
        ("C", "<MES"),
        ("S", "250"),
        ("C", "QUIT"),
        ("S", "221"),
    ]
    assert session["lines"][0]["text"].startswith("220 mailharness.local ")
    assert "250-PIPELINING" in _said(session, "S")
    assert f"250 2.0.0 Ok: queued as {submission_id}" in _said(session, "S")
    assert _said(session, "S")[-1] == "221 2.0.0 Bye"
    offsets = [line["ms"] for line in session["lines"]]
    assert offsets == sorted(offsets) and offsets[-1] > offsets[0] >= 0
    assert session["duration_ms"] >= offsets[-1] - 1
    text = json.dumps(session)
    assert "Body not recorded" not in text and "Secret subject" not in text

    # The stored message carries the same submission id.
    resp = await harness.http.get("/api/v1/messages", params={"submission_id": submission_id})
    assert [m["inbox_id"] for m in resp.json()["items"]] == [inbox["id"]]
    # Filters: the other inbox has the other session; both are inbound, none outbound.
    [theirs] = await _list(harness, inbox_id=other["id"])
    assert theirs["id"] != session["id"] and theirs["inbox_ids"] == [other["id"]]
    newest_first = [s["id"] for s in await _list(harness, direction="inbound")]
    assert newest_first == [theirs["id"], session["id"]]
    assert await _list(harness, direction="outbound") == []


async def test_unknown_and_malformed_ids(harness: Harness) -> None:
    for path in (
        "/api/v1/sessions/not-a-uuid",
        "/api/v1/sessions/00000000-0000-4000-8000-000000000000",
        "/api/v1/sessions?inbox_id=00000000-0000-4000-8000-000000000000",
        "/api/v1/sessions?inbox_id=nope",
    ):
        resp = await harness.http.get(path)
        assert resp.status_code == 404, (path, resp.text)
        assert resp.json()["error"] == "not_found"
    assert (await harness.http.get("/api/v1/sessions?direction=sideways")).status_code == 422
    resp = await harness.http.get("/api/v1/sessions", params={"cursor": "garbage"})
    assert resp.status_code == 400


async def test_refused_recipient_and_refused_connection(harness: Harness) -> None:
    resp = await harness.http.post(
        "/api/v1/rules",
        json={
            "match": {"recipient": "grey@mailharness.test"},
            "stage": "rcpt",
            "reply": {"code": 451, "enhanced": "4.7.1", "text": "Greylisted"},
        },
    )
    assert resp.status_code == 201

    def send() -> None:
        with smtplib.SMTP(harness.smtp_host, harness.smtp_port, timeout=10) as c:
            c.sendmail("app@example.com", ["grey@mailharness.test"], b"Subject: x\r\n\r\nx\r\n")

    with pytest.raises(smtplib.SMTPRecipientsRefused):
        await asyncio.to_thread(send)
    session = await _only(harness)
    lines = [(line["dir"], line["text"]) for line in session["lines"]]
    rcpt = lines.index(("C", "rcpt TO:<grey@mailharness.test>"))  # smtplib's spelling
    assert lines[rcpt + 1] == ("S", "451 4.7.1 Greylisted")
    assert "data" not in _said(session, "C")
    assert _said(session, "C")[-2:] == ["rset", "QUIT"]
    assert session["submission_ids"] == [] and session["inbox_ids"] == []

    # A connect-stage refusal: the session never got past the greeting, and is recorded.
    resp = await harness.http.post(
        "/api/v1/rules",
        json={"stage": "connect", "reply": {"code": 554, "enhanced": "5.3.2", "text": "Not now"}},
    )
    with pytest.raises(smtplib.SMTPConnectError):
        await asyncio.to_thread(smtplib.SMTP, harness.smtp_host, harness.smtp_port, timeout=5)
    newest = (await _list(harness))[0]
    refused = await _get(harness, newest["id"])
    assert [(line["dir"], line["text"]) for line in refused["lines"]] == [
        ("S", "554 5.3.2 Not now")
    ]
    assert refused["helo"] is None and refused["client_address"].startswith("127.0.0.1:")


async def test_client_hanging_up_in_data_and_long_lines(harness: Harness) -> None:
    raw = await Raw.open(harness)
    assert (await raw.send("HELO c.example"))[0].startswith("250")
    long_noop = "NOOP " + "x" * 3000  # within the reader's limit, over the command limit
    longer_noop = "NOOP " + "y" * 10_000  # over the reader's limit (read in pieces)
    assert await raw.send(long_noop) == ["500 5.5.2 Command line too long"]
    assert await raw.send(longer_noop) == ["500 5.5.2 Command line too long"]
    assert (await raw.send("MAIL FROM:<a@example.com>"))[0].startswith("250")
    assert (await raw.send("RCPT TO:<cut@mailharness.test>"))[0].startswith("250")
    assert (await raw.send("DATA"))[0].startswith("354")
    partial = b"Subject: half\r\n\r\nonly this much\r\n"
    raw.writer.write(partial)
    await raw.hang_up()
    session = await _only(harness)
    said = _said(session, "C")
    assert said[0] == "HELO c.example" and session["helo"] == "c.example"
    for line, sent in zip(said[1:3], (long_noop, longer_noop), strict=True):
        assert len(line) <= MAX_LINE_CHARS and line.startswith(sent[:100])
        assert line.endswith(f"… <{len(sent)} bytes>")
    # The server may see the hang-up before it has read all of the data.
    found = re.fullmatch(r"<message data: (\d+) bytes, incomplete>", said[-1])
    assert found is not None and int(found.group(1)) <= len(partial), said[-1]
    assert _said(session, "S")[-1] == "354 End data with <CR><LF>.<CR><LF>"
    assert session["submission_ids"] == []
    assert "only this much" not in json.dumps(session)


async def test_a_flood_of_commands_is_truncated(harness: Harness) -> None:
    raw = await Raw.open(harness)
    raw.writer.write(b"NOOP\r\n" * (MAX_LINES + 50))
    for _ in range(MAX_LINES + 50):
        await raw.reply()
    await raw.quit()
    session = await _only(harness)
    assert len(session["lines"]) == MAX_LINES + 1
    assert session["lines"][-1]["text"] == TRUNCATED


# --- TLS and AUTH -----------------------------------------------------------------------------


class TestStarttls:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"smtp_starttls": True, "smtp_hostname": HOSTNAME, "smtps_port": 0}

    async def test_tls_version_and_cipher_are_recorded(self, harness: Harness) -> None:
        inbox = await harness.create_inbox()
        cafile = harness.runtime.settings.data_dir / "tls" / "cert.pem"
        client = aiosmtplib.SMTP(
            hostname=harness.smtp_host, port=harness.smtp_port, start_tls=False
        )
        await client.connect()
        await client.ehlo()
        await client.starttls(
            tls_context=ssl.create_default_context(cafile=str(cafile)), server_hostname=HOSTNAME
        )
        ssl_object = client.get_transport_info("ssl_object")
        await client.ehlo()
        await client.sendmail("app@example.com", [inbox["address"]], simple_mail(to="x"))
        await client.quit()

        session = await _only(harness, inbox_id=inbox["id"])
        assert session["tls_version"] == ssl_object.version()
        assert session["tls_cipher"] == ssl_object.cipher()[0]
        said = _said(session, "C")
        assert said[:3] == ["EHLO " + client.local_hostname, "STARTTLS", said[0]]
        assert "220 2.0.0 Ready to start TLS" in _said(session, "S")
        assert "250-STARTTLS" in _said(session, "S")  # offered before, not after
        assert _said(session, "S").count("250-STARTTLS") == 1
        assert session["submission_ids"] and _said(session, "S")[-1] == "221 2.0.0 Bye"

    async def test_implicit_tls_is_recorded(self, harness: Harness) -> None:
        cafile = harness.runtime.settings.data_dir / "tls" / "cert.pem"
        port = harness.services.smtps_port
        assert port is not None
        client = aiosmtplib.SMTP(
            hostname=harness.smtp_host,
            port=port,
            use_tls=True,
            tls_context=ssl.create_default_context(cafile=str(cafile)),  # SAN 127.0.0.1
        )
        await client.connect()
        version = client.get_transport_info("ssl_object").version()
        await client.ehlo()
        await client.quit()
        session = await _only(harness)
        assert session["tls_version"] == version and session["tls_cipher"]
        assert session["server_address"] == f"127.0.0.1:{port}"
        assert "STARTTLS" not in _said(session, "C")


@pytest.mark.parametrize("settings_overrides", [{"smtp_auth_allow_plaintext": True}])
async def test_auth_user_is_recorded_and_the_password_never(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    inbox = await harness.create_inbox()
    plain_blob = _b64(f"\0{USER}\0{PASSWORD}")

    def stdlib_login_and_send() -> None:  # smtplib picks AUTH PLAIN with an initial response
        with smtplib.SMTP(harness.smtp_host, harness.smtp_port, timeout=10) as c:
            c.login(USER, PASSWORD)
            c.sendmail("app@example.com", [inbox["address"]], simple_mail(to="x"))

    await asyncio.to_thread(stdlib_login_and_send)
    [sent] = await _list(harness, inbox_id=inbox["id"])
    assert sent["auth_user"] == USER
    assert "AUTH PLAIN ****" in _said(await _get(harness, sent["id"]), "C")

    # AUTH PLAIN without initial response, AUTH LOGIN with and without: raw sockets.
    conversations: list[list[str]] = [
        ["AUTH PLAIN", plain_blob],
        ["AUTH LOGIN", _b64(USER), _b64(PASSWORD)],
        [f"AUTH LOGIN {_b64(USER)}", _b64(PASSWORD)],
    ]
    for conversation in conversations:
        raw = await Raw.open(harness)
        await raw.send("EHLO c.example")
        replies = [(await raw.send(line))[-1] for line in conversation]
        assert replies[-1].startswith("235"), replies
        assert all(r.startswith("334") for r in replies[:-1]), replies
        await raw.quit()
    # A wrong base64 blob and an aborted exchange leave no secret either.
    raw = await Raw.open(harness)
    await raw.send("EHLO c.example")
    assert (await raw.send("AUTH LOGIN"))[-1].startswith("334")
    assert (await raw.send("*"))[-1].startswith("501")
    assert (await raw.send(f"AUTH PLAIN {PASSWORD}"))[-1].startswith("501")
    await raw.quit()

    sessions = [await _get(harness, s["id"]) for s in await _list(harness)]
    assert len(sessions) == 5
    aborted, login_initial, login, plain, stdlib = sessions
    assert [s["auth_user"] for s in sessions] == [None, USER, USER, USER, USER]
    assert _said(plain, "C")[1:4] == ["AUTH PLAIN", "****", "QUIT"]
    assert _said(login, "C")[1:5] == ["AUTH LOGIN", "****", "****", "QUIT"]
    assert _said(login_initial, "C")[1:4] == ["AUTH LOGIN ****", "****", "QUIT"]
    assert _said(aborted, "C")[1:4] == ["AUTH LOGIN", "*", "AUTH PLAIN ****"]
    assert stdlib["submission_ids"] and "235 2.7.0 Authentication successful" in _said(stdlib, "S")

    everything = json.dumps(sessions) + json.dumps(await _list(harness)) + caplog.text
    for secret in (PASSWORD, _b64(PASSWORD), plain_blob, plain_blob.rstrip("=")):
        assert secret not in everything


# --- outbound ---------------------------------------------------------------------------------


@pytest.fixture
async def remote() -> AsyncIterator[RemoteServer]:
    server = await start_remote()
    yield server
    server.server.close()


class TestRelay:
    @pytest.fixture
    def settings_overrides(self, remote: RemoteServer) -> dict[str, Any]:
        return {
            "relay_url": f"smtp://127.0.0.1:{remote.port}",
            "retry_min_backoff": 0.2,
            "retry_max_backoff": 1.0,
            "relay_timeout": 5.0,
        }

    async def test_relay_attempts_are_recorded(
        self, harness: Harness, remote: RemoteServer
    ) -> None:
        remote.handler.rcpt_replies["later@example.com"] = [
            "450 4.2.1 Mailbox busy",
            "250 2.1.5 OK",
        ]
        sender = await harness.create_inbox(address="shop")
        resp = await harness.http.post(
            f"/api/v1/inboxes/{sender['id']}/send",
            json={"to": ["later@example.com"], "subject": "Receipt", "text": "Top secret body"},
        )
        assert resp.status_code == 202, resp.text
        sent = resp.json()
        [delivery] = sent["deliveries"]
        resp = await harness.http.get(
            f"/api/v1/deliveries/{delivery['id']}/wait",
            params={"state": "delivered", "timeout": 20},
        )
        assert resp.status_code == 200, resp.text

        sessions = await _list(harness, direction="outbound")
        assert len(sessions) == 2  # deferred at RCPT, then delivered
        assert await _list(harness, inbox_id=sender["id"]) == sessions
        second, first = [await _get(harness, s["id"]) for s in sessions]
        for session in (first, second):
            assert session["direction"] == "outbound"
            assert session["server_address"] == f"127.0.0.1:{remote.port}"
            assert session["client_address"].startswith("127.0.0.1:")
            assert session["helo"] == "mailharness.local"
            assert session["outbound_id"] == sent["id"]
            assert session["delivery_ids"] == [delivery["id"]]
            assert session["inbox_ids"] == [sender["id"]]
            assert session["lines"][0]["text"].startswith("220 remote.test ")
            assert "Top secret body" not in json.dumps(session)
            offsets = [line["ms"] for line in session["lines"]]
            assert offsets == sorted(offsets)
        said = _said(first, "C")
        assert said[0] == "EHLO mailharness.local"
        assert said[1].startswith("MAIL FROM:<shop@mailharness.test>")
        assert said[2:] == ["RCPT TO:<later@example.com>", "QUIT"]
        assert "450 4.2.1 Mailbox busy" in _said(first, "S")
        said = _said(second, "C")
        assert said[2:4] == ["RCPT TO:<later@example.com>", "DATA"]
        assert said[4].startswith("<message data: ") and said[5] == "QUIT"
        assert "250 2.0.0 Ok: remote accepted" in _said(second, "S")
        assert _said(second, "S")[-1].startswith("221")


async def test_outbound_auth_secrets_are_masked() -> None:
    """A relay with credentials (plain-text AUTH allowed by the remote): the user is
    recorded, the password in no form."""

    def accept(*_args: Any) -> AuthResult:
        return AuthResult(success=True)

    loop = asyncio.get_running_loop()
    got: list[Transcript] = []
    ports: list[int] = []
    for mechanism, other in (("PLAIN", "LOGIN"), ("LOGIN", "PLAIN")):
        # Each remote offers one mechanism, so the client has to use it.
        server = await loop.create_server(
            lambda other=other: SMTP(
                RemoteHandler(),
                hostname="remote.test",
                auth_require_tls=False,
                auth_exclude_mechanism=[other],
                authenticator=accept,
                loop=loop,
            ),
            "127.0.0.1",
            0,
        )
        ports.append(server.sockets[0].getsockname()[1])
        transport = SmtpTransport(
            target=RelayTarget(
                host="127.0.0.1",
                port=ports[-1],
                security="none",
                username=USER,
                password=PASSWORD,
            ),
            helo_name="client.test",
            timeout=5,
            recorder=got.append,
        )
        mail = OutboundMail(
            mail_from="a@example.com",
            recipients=["b@example.com"],
            raw=b"Message-ID: <x@example.com>\r\nSubject: s\r\n\r\nhidden body\r\n",
        )
        try:
            replies = await transport.deliver(mail)
        finally:
            server.close()
        assert replies["b@example.com"].code == 250, (mechanism, replies)
    plain, login = got
    assert _text(plain)[1] == "AUTH PLAIN ****"
    assert _text(login)[1:3] == ["AUTH LOGIN ****", "****"]
    assert _text(login)[3].startswith("MAIL FROM:<a@example.com>")
    for transcript, port in zip(got, ports, strict=True):
        assert transcript.auth_user == USER and transcript.direction == "outbound"
        assert transcript.message_id == "<x@example.com>"
        assert transcript.recipients == ["b@example.com"]
        assert transcript.server_address == f"127.0.0.1:{port}"
        assert transcript.helo == "client.test" and transcript.tls_version is None
        dumped = json.dumps(transcript.lines)
        assert "hidden body" not in dumped
        for secret in (PASSWORD, _b64(PASSWORD), _b64(f"\0{USER}\0{PASSWORD}")):
            assert secret not in dumped


def _text(transcript: Transcript) -> list[str]:
    return [line["text"] for line in transcript.lines if line["dir"] == "C"]


async def test_connection_refused_is_recorded_without_lines() -> None:
    got: list[Transcript] = []
    transport = SmtpTransport(
        target=RelayTarget(host="127.0.0.1", port=1, security="none"),
        helo_name="client.test",
        timeout=5,
        recorder=got.append,
    )
    mail = OutboundMail(mail_from="a@example.com", recipients=["b@example.com"], raw=b"x\r\n")
    reply = (await transport.deliver(mail))["b@example.com"]
    assert reply.code is None
    [transcript] = got
    assert transcript.finished and transcript.lines == []
    assert transcript.server_address == "127.0.0.1:1"


async def test_a_failing_recorder_does_not_break_delivery(remote: RemoteServer) -> None:
    def broken(_transcript: Transcript) -> None:
        raise RuntimeError("recorder down")

    transport = SmtpTransport(
        target=RelayTarget(host="127.0.0.1", port=remote.port, security="none"),
        helo_name="client.test",
        timeout=5,
        recorder=broken,
    )
    mail = OutboundMail(mail_from="a@example.com", recipients=["b@example.com"], raw=b"x\r\n")
    assert (await transport.deliver(mail))["b@example.com"].code == 250


# --- retention and paging ---------------------------------------------------------------------


async def test_trimming_keeps_the_newest_and_pages_walk_them(harness: Harness) -> None:
    for _ in range(7):
        raw = await Raw.open(harness)
        await raw.quit()
    everything = [s["id"] for s in await _list(harness)]
    assert len(everything) == 7

    walked: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await harness.http.get("/api/v1/sessions", params=params)).json()
        walked += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == everything
    first_page = (await harness.http.get("/api/v1/sessions", params={"limit": 3})).json()
    resp = await harness.http.get(
        "/api/v1/sessions", params={"cursor": first_page["next_cursor"], "direction": "inbound"}
    )
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_cursor"

    assert await trim_sessions(harness.runtime.db, 10) == 0
    assert await trim_sessions(harness.runtime.db, 3, batch=2) == 4
    assert [s["id"] for s in await _list(harness)] == everything[:3]
    assert (await harness.http.get(f"/api/v1/sessions/{everything[3]}")).status_code == 404
    assert await trim_sessions(harness.runtime.db, 0) == 3
    assert await _list(harness) == []


@pytest.mark.parametrize("settings_overrides", [{"session_retention": 0}])
async def test_retention_zero_records_nothing(harness: Harness) -> None:
    assert harness.runtime.session_recorder is None
    await harness.send("app@example.com", ["x@mailharness.test"], simple_mail(to="x"))
    resp = await harness.http.get("/api/v1/sessions")
    assert resp.status_code == 200 and resp.json()["items"] == []


@pytest.mark.parametrize("settings_overrides", [{"session_retention": 2}])
async def test_the_janitor_keeps_only_the_newest_sessions(harness: Harness) -> None:
    for _ in range(4):
        raw = await Raw.open(harness)
        await raw.quit()
    newest = [s["id"] for s in await _list(harness)][:2]
    await harness.runtime.janitor.sweep()
    assert [s["id"] for s in await _list(harness)] == newest


async def test_a_keyed_tenant_sees_the_sessions_that_reached_its_inboxes(harness: Harness) -> None:
    keys = harness.runtime.keys()
    a = {"X-API-Key": (await keys.create("sessions-a"))[1]}
    b = {"X-API-Key": (await keys.create("sessions-b"))[1]}
    box = (await harness.http.post("/api/v1/inboxes", json={"address": "sa"}, headers=a)).json()
    await harness.send("app@example.com", [box["address"]], simple_mail(to=box["address"]))
    assert harness.runtime.session_recorder is not None
    await harness.runtime.session_recorder.flush()
    mine = await harness.http.get("/api/v1/sessions", params={"inbox_id": box["id"]}, headers=a)
    assert [s["direction"] for s in mine.json()["items"]] == ["inbound"]
    session_id = mine.json()["items"][0]["id"]
    assert (await harness.http.get(f"/api/v1/sessions/{session_id}", headers=a)).status_code == 200
    assert (await harness.http.get(f"/api/v1/sessions/{session_id}", headers=b)).status_code == 404
    assert (await harness.http.get("/api/v1/sessions", headers=b)).json()["items"] == []
