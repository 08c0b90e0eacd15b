"""Outbound SMTP against real aiosmtpd servers on the test's own loop: replies per
recipient, greylisting, dropped and stalled connections, STARTTLS / implicit TLS
with a trustme CA, AUTH, the null sender, SMTPUTF8, MX fail-over, relay URLs."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from app.delivery.reply import Reply
from app.delivery.transport import (
    DnsTemporaryError,
    MxTransport,
    NullMxError,
    OutboundMail,
    RelayTarget,
    Security,
    SmtpTransport,
    order_mx,
    parse_relay_url,
)

RAW = b"From: a@sender.test\r\nTo: b@dest.test\r\nSubject: hi\r\n\r\nhello\r\n"


@dataclass
class Received:
    mail_from: str
    mail_options: list[str]
    rcpt_tos: list[str]
    content: bytes
    tls: bool
    auth_user: str | None


@dataclass
class Handler:
    """Records every DATA it accepts; replies are scripted per test."""

    rcpt_replies: dict[str, list[str]] = field(default_factory=dict)  # popped per RCPT
    mail_reply: str | None = None
    data_reply: str = "250 2.0.0 Ok: queued as ABC123"
    drop_in_data: bool = False
    stall: asyncio.Event | None = None  # DATA waits for this
    received: list[Received] = field(default_factory=list)
    data_calls: int = 0
    auth_users: list[str] = field(default_factory=list)
    quits: int = 0

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.mail_reply is not None:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        script = self.rcpt_replies.get(address)
        reply = script.pop(0) if script else "250 2.1.5 Ok"
        if reply.startswith("2"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.data_calls += 1
        if self.stall is not None:
            await self.stall.wait()
        if self.drop_in_data:
            assert server.transport is not None
            server.transport.close()
            return "250 never seen"
        if self.data_reply.startswith("2"):
            assert isinstance(envelope.content, bytes) and envelope.mail_from is not None
            auth = session.auth_data
            self.received.append(
                Received(
                    mail_from=envelope.mail_from,
                    mail_options=list(envelope.mail_options),
                    rcpt_tos=list(envelope.rcpt_tos),
                    content=envelope.content,
                    tls=server.transport is not None
                    and server.transport.get_extra_info("ssl_object") is not None,
                    auth_user=auth.login.decode() if isinstance(auth, LoginPassword) else None,
                )
            )
        return self.data_reply

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.quits += 1
        return "221 2.0.0 Bye"

    def authenticator(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        if data.password != b"s3cret:/@":
            return AuthResult(success=False, handled=False)
        self.auth_users.append(f"{mechanism}:{data.login.decode()}")
        return AuthResult(success=True, auth_data=data)


@asynccontextmanager
async def smtp_server(
    handler: Handler,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_context: ssl.SSLContext | None = None,
    **smtp_kwargs: Any,
) -> AsyncIterator[int]:
    """A real aiosmtpd server on this test's loop; yields its port."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="mx.test", loop=loop, **smtp_kwargs),
        host,
        port,
        ssl=ssl_context,
    )
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        if handler.stall is not None:
            handler.stall.set()
        server.close()
        await server.wait_closed()


async def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connection refused)."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    return port


def relay(
    port: int,
    *,
    security: Security = "none",
    timeout: float = 5.0,
    tls_context: ssl.SSLContext | None = None,
    username: str | None = None,
    password: str | None = None,
) -> SmtpTransport:
    return SmtpTransport(
        target=RelayTarget("127.0.0.1", port, security, username, password),
        helo_name="client.test",
        timeout=timeout,
        tls_context=tls_context,
    )


def mail(*recipients: str, sender: str = "a@sender.test", raw: bytes = RAW) -> OutboundMail:
    return OutboundMail(mail_from=sender, recipients=list(recipients), raw=raw)


@dataclass
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def tls() -> Tls:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return Tls(server=server, client=client)


# --- SmtpTransport -------------------------------------------------------------------


async def test_accepted_mail_gets_the_remote_reply() -> None:
    handler = Handler()
    async with smtp_server(handler) as port:
        replies = await relay(port).deliver(mail("b@dest.test"))
    assert replies == {
        "b@dest.test": Reply(250, "2.0.0", "Ok: queued as ABC123", f"127.0.0.1:{port}")
    }
    [got] = handler.received
    assert got.mail_from == "a@sender.test"
    assert got.rcpt_tos == ["b@dest.test"]
    assert got.content == RAW
    assert f"SIZE={len(RAW)}" in got.mail_options
    assert "SMTPUTF8" not in got.mail_options and "BODY=8BITMIME" not in got.mail_options
    assert handler.quits == 1  # the session is closed politely


async def test_no_recipients_means_no_connection() -> None:
    assert await relay(await closed_port()).deliver(mail()) == {}


async def test_greylisted_then_accepted() -> None:
    handler = Handler(rcpt_replies={"b@dest.test": ["451 4.7.1 Greylisted, try again later"]})
    async with smtp_server(handler) as port:
        transport = relay(port)
        first = await transport.deliver(mail("b@dest.test"))
        second = await transport.deliver(mail("b@dest.test"))
    reply = first["b@dest.test"]
    assert (reply.code, reply.enhanced, reply.text) == (451, "4.7.1", "Greylisted, try again later")
    assert reply.temporary and reply.remote == f"127.0.0.1:{port}"
    assert second["b@dest.test"].success
    assert handler.data_calls == 1 and len(handler.received) == 1


async def test_one_refused_one_accepted_in_one_transaction() -> None:
    handler = Handler(rcpt_replies={"nobody@dest.test": ["550 5.1.1 <nobody@dest.test>: unknown"]})
    async with smtp_server(handler) as port:
        replies = await relay(port).deliver(mail("nobody@dest.test", "b@dest.test"))
    assert list(replies) == ["nobody@dest.test", "b@dest.test"]
    refused = replies["nobody@dest.test"]
    assert (refused.code, refused.enhanced, refused.permanent) == (550, "5.1.1", True)
    assert replies["b@dest.test"].code == 250
    assert handler.data_calls == 1
    [got] = handler.received
    assert got.rcpt_tos == ["b@dest.test"]


async def test_all_refused_means_no_data() -> None:
    handler = Handler(rcpt_replies={"x@dest.test": ["550 5.1.1 unknown"]})
    async with smtp_server(handler) as port:
        replies = await relay(port).deliver(mail("x@dest.test"))
    assert replies["x@dest.test"].enhanced == "5.1.1"
    assert handler.data_calls == 0 and handler.quits == 1


async def test_duplicate_recipients_get_one_rcpt() -> None:
    handler = Handler()
    async with smtp_server(handler) as port:
        replies = await relay(port).deliver(mail("b@dest.test", "b@dest.test"))
    assert list(replies) == ["b@dest.test"]
    assert handler.received[0].rcpt_tos == ["b@dest.test"]


async def test_data_rejection_applies_to_every_accepted_recipient() -> None:
    handler = Handler(
        data_reply="554 5.7.1 spam detected",
        rcpt_replies={"x@dest.test": ["450 4.2.0 mailbox busy"]},
    )
    async with smtp_server(handler) as port:
        replies = await relay(port).deliver(mail("b@dest.test", "c@dest.test", "x@dest.test"))
    assert replies["b@dest.test"] == replies["c@dest.test"]
    assert (replies["b@dest.test"].code, replies["b@dest.test"].enhanced) == (554, "5.7.1")
    assert replies["x@dest.test"].code == 450


async def test_mail_from_rejection_applies_to_all() -> None:
    handler = Handler(mail_reply="553 5.7.1 sender rejected")
    async with smtp_server(handler) as port:
        replies = await relay(port).deliver(mail("b@dest.test", "c@dest.test"))
    assert {r.code for r in replies.values()} == {553}
    assert {r.enhanced for r in replies.values()} == {"5.7.1"}


async def test_connection_dropped_in_data_is_no_reply_for_all() -> None:
    handler = Handler(drop_in_data=True)
    async with smtp_server(handler) as port:
        replies = await relay(port).deliver(mail("b@dest.test", "c@dest.test"))
    for reply in replies.values():
        assert reply.code is None and reply.temporary
        assert "connection lost" in reply.text and "DATA" in reply.text
        assert reply.remote == f"127.0.0.1:{port}"


async def test_stalled_server_times_out() -> None:
    handler = Handler(stall=asyncio.Event())
    async with smtp_server(handler) as port:
        replies = await relay(port, timeout=0.5).deliver(mail("b@dest.test"))
    reply = replies["b@dest.test"]
    assert reply.code is None
    assert "timed out" in reply.text and "DATA" in reply.text
    assert handler.data_calls == 1


async def test_connection_refused_is_no_reply() -> None:
    port = await closed_port()
    replies = await relay(port).deliver(mail("b@dest.test", "c@dest.test"))
    for reply in replies.values():
        assert reply.code is None and reply.remote == f"127.0.0.1:{port}"
        assert "connection failed" in reply.text


async def test_unknown_host_is_no_reply() -> None:
    transport = SmtpTransport(
        target=RelayTarget("no-such-host.invalid", 25, "none"), helo_name="c.test", timeout=2
    )
    reply = (await transport.deliver(mail("b@dest.test")))["b@dest.test"]
    assert reply.code is None and reply.remote == "no-such-host.invalid:25"


@asynccontextmanager
async def scripted_server(
    replies: dict[str, str], greeting: str = "220 raw.test ESMTP"
) -> AsyncIterator[tuple[int, list[str]]]:
    """A bare line-based SMTP server for replies aiosmtpd cannot give: ``replies`` maps
    a verb to its reply (default ``250 2.0.0 Ok``); yields (port, commands received)."""
    commands: list[str] = []

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(greeting.encode() + b"\r\n")
        line = b"" if not greeting.startswith("2") else await reader.readline()
        while line:
            command = line.decode().rstrip("\r\n")
            commands.append(command)
            verb = command.split(" ", 1)[0].upper()
            if verb == "DATA":
                writer.write(b"354 go ahead\r\n")
                while (await reader.readline()) not in (b".\r\n", b""):
                    pass
            writer.write(replies.get(verb, "250 2.0.0 Ok").encode() + b"\r\n")
            await writer.drain()
            line = b"" if verb == "QUIT" else await reader.readline()
        writer.close()

    server = await asyncio.start_server(session, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], commands
    finally:
        server.close()
        await server.wait_closed()


def verbs(commands: list[str]) -> list[str]:
    return [c.split(" ", 1)[0].upper() for c in commands]


async def test_greeting_rejection_applies_to_all() -> None:
    async with scripted_server({}, greeting="421 4.3.2 too busy, come back later") as (port, _):
        replies = await relay(port).deliver(mail("b@dest.test", "c@dest.test"))
    for reply in replies.values():
        assert (reply.code, reply.enhanced, reply.text) == (
            421,
            "4.3.2",
            "too busy, come back later",
        )


async def test_ehlo_refused_falls_back_to_helo() -> None:
    async with scripted_server({"EHLO": "502 5.5.2 command not recognized"}) as (port, seen):
        replies = await relay(port).deliver(mail("b@dest.test"))
    assert replies["b@dest.test"].success
    assert verbs(seen) == ["EHLO", "HELO", "MAIL", "RCPT", "DATA", "QUIT"]
    assert seen[1] == "HELO client.test"
    assert seen[2] == "MAIL FROM:<a@sender.test>"  # no ESMTP options to a HELO server


async def test_opportunistic_starttls_refused_goes_on_in_plain_text() -> None:
    script = {"EHLO": "250-raw.test\r\n250 STARTTLS", "STARTTLS": "454 4.7.0 TLS not available"}
    async with scripted_server(script) as (port, seen):
        replies = await relay(port, security="starttls").deliver(mail("b@dest.test"))
        required = await relay(port, security="require-starttls").deliver(mail("b@dest.test"))
    assert replies["b@dest.test"].success
    assert (required["b@dest.test"].code, required["b@dest.test"].enhanced) == (454, "4.7.0")
    assert verbs(seen) == ["EHLO", "STARTTLS", "MAIL", "RCPT", "DATA", "QUIT"] + [
        "EHLO",
        "STARTTLS",
        "QUIT",
    ]


async def test_421_to_rcpt_ends_the_session_for_everyone() -> None:
    async with scripted_server({"RCPT": "421 4.4.5 shutting down"}) as (port, seen):
        replies = await relay(port).deliver(mail("b@dest.test", "c@dest.test"))
    assert {r.code for r in replies.values()} == {421}
    assert verbs(seen) == ["EHLO", "MAIL", "RCPT"]  # aiosmtplib hangs up after a 421


async def test_null_sender() -> None:
    handler = Handler()
    async with smtp_server(handler) as port:
        replies = await relay(port).deliver(mail("b@dest.test", sender=""))
        also = await relay(port).deliver(mail("c@dest.test", sender="<>"))
    assert replies["b@dest.test"].success and also["c@dest.test"].success
    assert [r.mail_from for r in handler.received] == ["<>", "<>"]


async def test_smtputf8_used_when_offered() -> None:
    handler = Handler()
    async with smtp_server(handler, enable_SMTPUTF8=True) as port:
        replies = await relay(port).deliver(
            mail("jörg@dest.test", sender="änne@sender.test", raw=RAW.replace(b"hi", "hé".encode()))
        )
    assert replies["jörg@dest.test"].success
    [got] = handler.received
    assert got.mail_from == "änne@sender.test" and got.rcpt_tos == ["jörg@dest.test"]
    assert "SMTPUTF8" in got.mail_options and "BODY=8BITMIME" in got.mail_options


async def test_non_ascii_recipient_without_smtputf8_is_refused_locally() -> None:
    handler = Handler()
    async with smtp_server(handler) as port:
        replies = await relay(port).deliver(mail("jörg@dest.test", "b@dest.test"))
        sender = await relay(port).deliver(mail("b@dest.test", sender="änne@sender.test"))
    refused = replies["jörg@dest.test"]
    assert (refused.code, refused.enhanced) == (553, "5.6.7")
    assert replies["b@dest.test"].success
    assert handler.received[0].rcpt_tos == ["b@dest.test"]
    assert sender["b@dest.test"].enhanced == "5.6.7"
    assert len(handler.received) == 1


async def test_address_with_control_characters_is_refused_without_sending() -> None:
    handler = Handler()
    async with smtp_server(handler) as port:
        replies = await relay(port).deliver(mail("b@dest.test\r\nDATA", "c@dest.test"))
    assert replies["b@dest.test\r\nDATA"].enhanced == "5.1.3"
    assert replies["c@dest.test"].success
    assert handler.received[0].rcpt_tos == ["c@dest.test"]


@pytest.mark.parametrize("security", ["starttls", "require-starttls"])
async def test_starttls(tls: Tls, security: Security) -> None:
    handler = Handler()
    async with smtp_server(handler, tls_context=tls.server, require_starttls=True) as port:
        replies = await relay(port, security=security, tls_context=tls.client).deliver(
            mail("b@dest.test")
        )
    assert replies["b@dest.test"].success
    assert handler.received[0].tls


async def test_opportunistic_starttls_without_tls_goes_plain() -> None:
    handler = Handler()
    async with smtp_server(handler) as port:
        replies = await relay(port, security="starttls").deliver(mail("b@dest.test"))
    assert replies["b@dest.test"].success
    assert not handler.received[0].tls


async def test_required_starttls_not_offered_is_temporary() -> None:
    handler = Handler()
    async with smtp_server(handler) as port:
        replies = await relay(port, security="require-starttls").deliver(mail("b@dest.test"))
    reply = replies["b@dest.test"]
    assert reply.code is None and reply.temporary and "STARTTLS" in reply.text
    assert handler.data_calls == 0


async def test_untrusted_certificate_is_temporary(tls: Tls) -> None:
    handler = Handler()
    async with smtp_server(handler, tls_context=tls.server) as port:
        replies = await relay(
            port, security="starttls", tls_context=ssl.create_default_context()
        ).deliver(mail("b@dest.test"))
    reply = replies["b@dest.test"]
    assert reply.code is None and "TLS" in reply.text
    assert handler.data_calls == 0


async def test_implicit_tls(tls: Tls) -> None:
    handler = Handler()
    async with smtp_server(handler, ssl_context=tls.server) as port:
        replies = await relay(port, security="tls", tls_context=tls.client).deliver(
            mail("b@dest.test")
        )
    assert replies["b@dest.test"].success
    assert handler.received[0].tls


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
async def test_auth(mechanism: str) -> None:
    handler = Handler()
    other = "LOGIN" if mechanism == "PLAIN" else "PLAIN"
    async with smtp_server(
        handler,
        authenticator=handler.authenticator,
        auth_require_tls=False,
        auth_exclude_mechanism=[other],
    ) as port:
        transport = relay(port, username="relay user", password="s3cret:/@")
        replies = await transport.deliver(mail("b@dest.test"))
    assert replies["b@dest.test"].success
    assert handler.auth_users == [f"{mechanism}:relay user"]
    assert handler.received[0].auth_user == "relay user"


async def test_auth_rejected_is_temporary() -> None:
    handler = Handler()
    async with smtp_server(
        handler, authenticator=handler.authenticator, auth_require_tls=False
    ) as port:
        replies = await relay(port, username="u", password="wrong").deliver(mail("b@dest.test"))
    reply = replies["b@dest.test"]
    assert reply.code is None and reply.temporary
    assert "authentication failed: 535" in reply.text
    assert handler.data_calls == 0


async def test_auth_not_offered_is_temporary() -> None:
    handler = Handler()
    async with smtp_server(handler) as port:
        replies = await relay(port, username="u", password="p").deliver(mail("b@dest.test"))
    assert replies["b@dest.test"].code is None and "AUTH" in replies["b@dest.test"].text
    assert handler.data_calls == 0


# --- parse_relay_url ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://relay.example.com", RelayTarget("relay.example.com", 25, "starttls")),
        ("smtp://relay.example.com:2525", RelayTarget("relay.example.com", 2525, "starttls")),
        ("SMTP://Relay.Example.COM", RelayTarget("relay.example.com", 25, "starttls")),
        (
            "smtp+starttls://u:p@relay.example.com:587",
            RelayTarget("relay.example.com", 587, "require-starttls", "u", "p"),
        ),
        (
            "smtp+starttls://relay.example.com",
            RelayTarget("relay.example.com", 25, "require-starttls"),
        ),
        ("smtps://relay.example.com", RelayTarget("relay.example.com", 465, "tls")),
        (
            "smtps://me%40example.com:p%3Aw%2Fd%40x@relay.example.com:2465/",
            RelayTarget("relay.example.com", 2465, "tls", "me@example.com", "p:w/d@x"),
        ),
        ("smtp://[::1]:2525", RelayTarget("::1", 2525, "starttls")),
        ("smtp://127.0.0.1", RelayTarget("127.0.0.1", 25, "starttls")),
    ],
)
def test_parse_relay_url(url: str, expected: RelayTarget) -> None:
    assert parse_relay_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://relay.example.com",
        "relay.example.com:25",
        "smtp://",
        "smtp://:25",
        "smtp://relay.example.com:99999",
        "smtp://relay.example.com:0",
        "smtp://relay.example.com:abc",
        "smtp://relay.example.com/path",
        "smtp://relay.example.com?x=1",
        "smtp://user@relay.example.com",
        "",
    ],
)
def test_parse_relay_url_rejects(url: str) -> None:
    with pytest.raises(ValueError):
        parse_relay_url(url)


def test_relay_target_repr_hides_the_password() -> None:
    assert "s3cret" not in repr(parse_relay_url("smtp://u:s3cret@relay.example.com"))


# --- MxTransport ----------------------------------------------------------------------


@dataclass
class FakeResolver:
    """The DNS seam: a fixed answer (or error) per domain."""

    answers: dict[str, list[str] | Exception]
    asked: list[str] = field(default_factory=list)

    async def mx_hosts(self, domain: str) -> list[str]:
        self.asked.append(domain)
        answer = self.answers[domain]
        if isinstance(answer, Exception):
            raise answer
        return answer


def mx(resolver: FakeResolver, port: int, timeout: float = 5.0) -> MxTransport:
    return MxTransport(resolver=resolver, helo_name="client.test", timeout=timeout, port=port)


@asynccontextmanager
async def second_server(handler: Handler, port: int) -> AsyncIterator[int]:
    """A server on 127.0.0.2 with the same port (Linux routes all of 127/8 to lo)."""
    async with smtp_server(handler, host="127.0.0.2", port=port) as same:
        yield same


async def test_mx_delivers_to_the_first_host() -> None:
    handler = Handler()
    resolver = FakeResolver({"dest.test": ["127.0.0.1"]})
    async with smtp_server(handler) as port:
        replies = await mx(resolver, port).deliver(mail("b@dest.test", "c@DEST.test"))
    assert resolver.asked == ["dest.test"]
    assert {r.code for r in replies.values()} == {250}
    assert handler.received[0].rcpt_tos == ["b@dest.test", "c@DEST.test"]


async def test_mx_refused_host_falls_over_to_the_next() -> None:
    handler = Handler()
    resolver = FakeResolver({"dest.test": ["127.0.0.2", "127.0.0.1"]})  # nothing on .2
    async with smtp_server(handler) as port:
        replies = await mx(resolver, port).deliver(mail("b@dest.test"))
    assert replies["b@dest.test"].success
    assert replies["b@dest.test"].remote == f"127.0.0.1:{port}"


async def test_mx_4xx_at_mail_falls_over_to_the_next() -> None:
    busy, good = Handler(mail_reply="451 4.3.0 try later"), Handler()
    resolver = FakeResolver({"dest.test": ["127.0.0.1", "127.0.0.2"]})
    async with smtp_server(busy) as port, second_server(good, port):
        replies = await mx(resolver, port).deliver(mail("b@dest.test"))
    assert replies["b@dest.test"].success
    assert replies["b@dest.test"].remote == f"127.0.0.2:{port}"
    assert len(good.received) == 1


async def test_mx_per_recipient_replies_do_not_fall_over() -> None:
    first = Handler(
        rcpt_replies={
            "x@dest.test": ["550 5.1.1 unknown user"],
            "y@dest.test": ["452 4.2.2 mailbox full"],
        }
    )
    backup = Handler()
    resolver = FakeResolver({"dest.test": ["127.0.0.1", "127.0.0.2"]})
    async with smtp_server(first) as port, second_server(backup, port):
        replies = await mx(resolver, port).deliver(
            mail("x@dest.test", "y@dest.test", "b@dest.test")
        )
    assert replies["x@dest.test"].code == 550
    assert replies["y@dest.test"].code == 452
    assert replies["b@dest.test"].success
    assert backup.data_calls == 0 and first.received[0].rcpt_tos == ["b@dest.test"]


async def test_mx_all_hosts_down_is_no_reply() -> None:
    port = await closed_port()
    resolver = FakeResolver({"dest.test": ["127.0.0.1", "127.0.0.2"]})
    replies = await mx(resolver, port).deliver(mail("b@dest.test"))
    reply = replies["b@dest.test"]
    assert reply.code is None and reply.remote == f"127.0.0.2:{port}"


async def test_mx_no_mail_exchanger_is_permanent() -> None:
    resolver = FakeResolver({"nowhere.test": LookupError("nowhere.test: no such domain")})
    replies = await mx(resolver, await closed_port()).deliver(mail("b@nowhere.test"))
    reply = replies["b@nowhere.test"]
    assert (reply.code, reply.enhanced, reply.remote) == (550, "5.1.2", None)
    assert reply.permanent and "no such domain" in reply.text


async def test_mx_null_mx_is_permanent() -> None:
    resolver = FakeResolver({"null.test": NullMxError("null.test publishes a null MX")})
    replies = await mx(resolver, await closed_port()).deliver(mail("b@null.test"))
    assert (replies["b@null.test"].code, replies["b@null.test"].enhanced) == (556, "5.1.10")


async def test_mx_temporary_dns_failure_is_no_reply() -> None:
    resolver = FakeResolver({"dest.test": DnsTemporaryError("dest.test: SERVFAIL")})
    replies = await mx(resolver, await closed_port()).deliver(mail("b@dest.test"))
    reply = replies["b@dest.test"]
    assert reply.code is None and reply.remote is None and "DNS lookup" in reply.text


async def test_mx_groups_recipients_by_domain() -> None:
    one, two = Handler(), Handler()
    resolver = FakeResolver({"one.test": ["127.0.0.1"], "two.test": ["127.0.0.2"]})
    async with smtp_server(one) as port, second_server(two, port):
        replies = await mx(resolver, port).deliver(
            mail("a@one.test", "b@two.test", "c@one.test", "nodomain")
        )
    assert list(replies) == ["a@one.test", "b@two.test", "c@one.test", "nodomain"]
    assert one.received[0].rcpt_tos == ["a@one.test", "c@one.test"]
    assert two.received[0].rcpt_tos == ["b@two.test"]
    assert replies["nodomain"].enhanced == "5.1.3"


async def test_mx_domain_literal_skips_dns() -> None:
    handler = Handler()
    resolver = FakeResolver({})
    async with smtp_server(handler) as port:
        replies = await mx(resolver, port).deliver(mail("b@[127.0.0.1]"))
    assert replies["b@[127.0.0.1]"].success and resolver.asked == []


# --- DnsResolver's pure part ----------------------------------------------------------


def test_order_mx_by_preference_keeping_ties() -> None:
    records = [(20, "b.mx.test."), (10, "z.mx.test."), (20, "a.mx.test."), (10, "Y.MX.test.")]
    assert order_mx(records, "d.test") == ["z.mx.test", "y.mx.test", "b.mx.test", "a.mx.test"]


def test_order_mx_deduplicates() -> None:
    assert order_mx([(10, "mx.test."), (20, "mx.test.")], "d.test") == ["mx.test"]


def test_null_mx() -> None:
    with pytest.raises(NullMxError):
        order_mx([(0, ".")], "d.test")
    assert order_mx([(0, "."), (10, "mx.test.")], "d.test") == ["mx.test"]


def test_no_records_is_lookup_error() -> None:
    with pytest.raises(LookupError):
        order_mx([], "d.test")
