"""Outbound SMTP (Postfix's smtp client): one transaction to a relay host or a domain's MX.

SUMMARY
    ``SmtpTransport`` delivers one mail to one host in one SMTP transaction and
    returns exactly one ``Reply`` per (distinct) recipient; it never raises for
    network or protocol trouble. ``MxTransport`` looks up the recipients'
    domain through an ``MxResolver`` and tries the MX hosts in preference
    order. ``parse_relay_url`` reads the smarthost setting.

HOW FAILURES BECOME REPLIES
    * a server reply is kept as is (``Reply.parse``: code, enhanced code, text),
      with ``remote="host:port"``;
    * RCPT refused -> that recipient gets the RCPT reply; the others go on
      (a 421 ends the session: that reply for every recipient still open);
    * DATA reply (or its failure) -> every recipient whose RCPT was accepted;
    * 4xx/5xx to the greeting, EHLO/HELO, STARTTLS (when TLS is required) or
      MAIL FROM -> that reply for every recipient;
    * no reply at all (connection refused, host not found, timeout, connection
      lost, TLS handshake failure, STARTTLS required but not offered) ->
      ``Reply.no_reply(description, remote)`` for every recipient without a
      final reply; the retry policy treats that like a 4xx;
    * AUTH rejected, even with 5xx -> ``no_reply("authentication failed: ...")``
      (temporary), like Postfix's ``smtp_sasl_auth_soft_bounce=yes``: wrong
      relay credentials must not bounce the whole queue;
    * a non-ASCII address and a server without SMTPUTF8 -> ``553 5.6.7`` for
      that recipient (all recipients if it is the sender), decided locally;
    * an address containing control characters -> ``553 5.1.3`` / ``5.1.7``
      (local, ``remote=None``), nothing is sent for it.

SECURITY
    ``none``: plain text. ``starttls`` (``smtp://``): STARTTLS when offered;
    if the server then refuses STARTTLS the session goes on in plain text, but
    a failed TLS handshake is a temporary failure (no silent downgrade after a
    certificate check failed). ``require-starttls`` (``smtp+starttls://``):
    STARTTLS not offered or a failed handshake is a temporary failure, a
    4xx/5xx reply to STARTTLS is kept as the reply. ``tls`` (``smtps://``):
    implicit TLS. Without ``tls_context`` aiosmtplib's default (verifying)
    context is used; ``MxTransport`` defaults to an unverified context
    (opportunistic TLS, Postfix's ``smtp_tls_security_level=may``). Credentials
    are sent even without TLS if the relay offers AUTH in plain text.

TRANSCRIPTS
    With a ``recorder`` (``SmtpTransport`` and ``MxTransport`` take one), every
    connection attempt is recorded as an outbound ``app.smtp.transcript.
    Transcript``: the remote host:port, our address, EHLO name, TLS version and
    cipher, the AUTH user, every command and reply with timings (message data
    as one summary line, AUTH secrets as ``****``), plus the sender, recipients
    and Message-ID so the store can find the outbound message. The recorder is
    called once per attempt, before ``deliver`` returns; it must not block, and
    whatever it raises is logged, never seen by the caller.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib
import dns.asyncresolver
import dns.exception
import dns.resolver

from app.delivery.reply import Reply
from app.smtp.transcript import Transcript, message_id_of

log = logging.getLogger(__name__)

Security = Literal["none", "starttls", "require-starttls", "tls"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SCHEMES: dict[str, tuple[Security, int]] = {
    "smtp": ("starttls", 25),
    "smtp+starttls": ("require-starttls", 25),
    "smtps": ("tls", 465),
}


@dataclass(frozen=True, slots=True)
class OutboundMail:
    mail_from: str  # "" (or "<>") is the null reverse-path
    recipients: Sequence[str]
    raw: bytes


class Transport(Protocol):
    async def deliver(self, mail: OutboundMail) -> dict[str, Reply]:
        """Exactly one Reply per distinct recipient; never raises for delivery trouble."""
        ...


@dataclass(frozen=True, slots=True)
class RelayTarget:
    host: str
    port: int
    security: Security
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def parse_relay_url(url: str) -> RelayTarget:
    """``smtp://[user:pass@]host[:port]`` (STARTTLS when offered, port 25),
    ``smtp+starttls://`` (STARTTLS required, port 25), ``smtps://`` (implicit TLS,
    port 465). User and password are percent-decoded. ValueError otherwise."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid relay URL: {exc}") from None
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise ValueError(
            f"relay URL scheme must be smtp, smtp+starttls or smtps, not {parts.scheme!r}"
        )
    if not parts.hostname:
        raise ValueError("relay URL has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("relay URL must not have a path, query or fragment")
    if port == 0:
        raise ValueError("relay URL port must be 1-65535")
    security, default_port = scheme
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    if username is not None and password is None:
        raise ValueError("relay URL has a user name but no password")
    if not username:
        username = password = None
    return RelayTarget(
        host=parts.hostname,
        port=port if port is not None else default_port,
        security=security,
        username=username,
        password=password,
    )


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _bare(address: str) -> str:
    address = address.strip()
    if address.startswith("<") and address.endswith(">"):
        address = address[1:-1].strip()
    return address


class _SessionEnd(Exception):
    """Ends the SMTP session: every recipient without a final reply gets ``reply``."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.text)
        self.reply = reply


@dataclass(slots=True)
class _Outcome:
    replies: dict[str, Reply]
    # Recipients that failed at session level (no reply, or 4xx before RCPT):
    # another MX host may do better for them.
    retry_elsewhere: set[str]


Recorder = Callable[[Transcript], None]


class _Tap:
    """Tells a transcript what one aiosmtplib connection writes and reads (wraps the
    protocol object's ``write`` and ``read_response``; it stays the same object
    across STARTTLS)."""

    def __init__(self, protocol: Any, transcript: Transcript) -> None:
        self.transcript = transcript
        self._write = protocol.write
        self._read_response = protocol.read_response
        protocol.write = self.write
        protocol.read_response = self.read_response

    def write(self, data: bytes) -> None:
        self._write(data)
        self.transcript.client_bytes(data)

    async def read_response(self, timeout: float | None = None) -> aiosmtplib.SMTPResponse:
        response: aiosmtplib.SMTPResponse = await self._read_response(timeout=timeout)
        self.transcript.server_reply(response.code, response.message)
        return response


def _address(sockname: Any) -> str | None:
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        host = str(sockname[0])
        return f"[{host}]:{sockname[1]}" if ":" in host else f"{host}:{sockname[1]}"
    return None


class SmtpTransport:
    """One SMTP transaction to one host (a smarthost, or one MX host)."""

    def __init__(
        self,
        *,
        target: RelayTarget,
        helo_name: str,
        timeout: float,
        tls_context: ssl.SSLContext | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self.target = target
        self.helo_name = helo_name
        self.timeout = timeout
        self.tls_context = tls_context
        self.recorder = recorder
        host = target.host
        self.remote = f"[{host}]:{target.port}" if ":" in host else f"{host}:{target.port}"

    async def deliver(self, mail: OutboundMail) -> dict[str, Reply]:
        return (await self._attempt(mail)).replies

    async def _attempt(self, mail: OutboundMail) -> _Outcome:
        recipients = _unique(mail.recipients)
        final: dict[str, Reply] = {}
        retry_elsewhere: set[str] = set()
        sender = _bare(mail.mail_from)
        if _CONTROL.search(sender):
            bad = Reply.parse(553, "5.1.7 bad sender address syntax")
            return _Outcome(dict.fromkeys(recipients, bad), retry_elsewhere)
        for r in recipients:
            if not _bare(r) or _CONTROL.search(r):
                final[r] = Reply.parse(553, "5.1.3 bad recipient address syntax")
        if len(final) == len(recipients):
            return _Outcome(final, retry_elsewhere)

        transcript = None
        if self.recorder is not None:
            transcript = Transcript(
                direction="outbound",
                server_address=self.remote,
                helo=self.helo_name,
                mail_from=mail.mail_from,
                recipients=recipients,
                message_id=message_id_of(mail.raw),
            )
        session = _Session(self, sender, recipients, mail.raw, final, transcript)
        client = aiosmtplib.SMTP(
            hostname=self.target.host,
            port=self.target.port,
            local_hostname=self.helo_name,
            timeout=self.timeout,
            use_tls=self.target.security == "tls",
            start_tls=False,
            tls_context=self.tls_context,
        )
        try:
            await session.run(client)
        except asyncio.CancelledError:
            client.close()  # drop the connection at once; no QUIT
            raise
        except Exception as exc:
            if transcript is not None and isinstance(exc, aiosmtplib.SMTPConnectResponseError):
                transcript.server_reply(exc.code, exc.message)  # the refused greeting
            reply, session_level = session.failure_reply(exc)
            for r in recipients:
                if r not in final:
                    final[r] = reply
                    if session_level:
                        retry_elsewhere.add(r)
        finally:
            await self._quit(client)
            if transcript is not None:
                self._record(transcript)
        return _Outcome({r: final[r] for r in recipients}, retry_elsewhere)

    def _record(self, transcript: Transcript) -> None:
        transcript.finish()
        try:
            assert self.recorder is not None
            self.recorder(transcript)
        except Exception:
            log.exception("transcript of the session with %s not recorded", self.remote)

    async def _quit(self, client: aiosmtplib.SMTP) -> None:
        try:
            if client.is_connected:
                await client.quit()
        except (aiosmtplib.SMTPException, OSError):
            pass
        finally:
            client.close()


class _Session:
    """The state of one SMTP conversation (stage, accepted recipients)."""

    def __init__(
        self,
        transport: SmtpTransport,
        sender: str,
        recipients: list[str],
        raw: bytes,
        final: dict[str, Reply],
        transcript: Transcript | None = None,
    ) -> None:
        self.t = transport
        self.remote = transport.remote
        self.sender = sender
        self.recipients = recipients
        self.raw = raw
        self.final = final
        self.transcript = transcript
        self.stage = "connect"

    def note_tls(self, client: aiosmtplib.SMTP) -> None:
        if self.transcript is not None and client.transport is not None:
            self.transcript.note_tls(client.transport.get_extra_info("ssl_object"))

    def reply(self, code: int, message: str) -> Reply:
        if 200 <= code <= 599:
            return Reply.parse(code, message, self.remote)
        return Reply.no_reply(f"invalid reply to {self.stage}: {message}", self.remote)

    async def run(self, client: aiosmtplib.SMTP) -> None:
        target = self.t.target
        greeting = await client.connect()
        if self.transcript is not None and client.protocol is not None:
            self.transcript.client_address = _address(client.get_transport_info("sockname"))
            self.transcript.server_reply(greeting.code, greeting.message)
            self.note_tls(client)
            _Tap(client.protocol, self.transcript)
        await self.hello(client)
        if target.security in ("starttls", "require-starttls"):
            await self.starttls(client, required=target.security == "require-starttls")
        if target.username is not None:
            await self.login(client, target.username, target.password or "")
        smtputf8 = self.smtputf8(client)
        if smtputf8 is None:
            return
        await self.mail_from(client, smtputf8)
        accepted = await self.rcpt_to(client, smtputf8)
        if accepted:
            await self.data(client, accepted)

    async def hello(self, client: aiosmtplib.SMTP) -> None:
        self.stage = "EHLO"
        try:
            await client.ehlo()
        except aiosmtplib.SMTPHeloError as exc:
            if exc.code < 500 or not client.is_connected:
                raise
            self.stage = "HELO"
            await client.helo()

    async def starttls(self, client: aiosmtplib.SMTP, *, required: bool) -> None:
        if not client.supports_extension("starttls"):
            if required:
                raise _SessionEnd(
                    Reply.no_reply(
                        "STARTTLS is required but not offered by the server", self.remote
                    )
                )
            return
        self.stage = "STARTTLS"
        try:
            await client.starttls()
        except aiosmtplib.SMTPResponseException:
            if required or not client.is_connected:
                raise
            return  # opportunistic: the server refused STARTTLS, go on in plain text
        self.note_tls(client)
        await self.hello(client)

    async def login(self, client: aiosmtplib.SMTP, username: str, password: str) -> None:
        self.stage = "AUTH"
        if not client.supports_extension("auth"):
            raise _SessionEnd(
                Reply.no_reply(
                    "relay credentials are set but the server does not offer AUTH", self.remote
                )
            )
        try:
            await client.login(username, password)
        except aiosmtplib.SMTPAuthenticationError as exc:
            if 400 <= exc.code < 500:
                raise
            raise _SessionEnd(
                Reply.no_reply(
                    f"authentication failed: {exc.code} {' '.join(exc.message.split())}",
                    self.remote,
                )
            ) from exc
        if self.transcript is not None:
            self.transcript.auth_user = username

    def smtputf8(self, client: aiosmtplib.SMTP) -> bool | None:
        """Whether to use SMTPUTF8; None when nothing can be sent (all recipients final)."""
        supported = client.supports_extension("smtputf8")
        if supported:
            needed = not (
                self.sender.isascii()
                and all(r.isascii() for r in self.recipients)
                and self.raw.isascii()
            )
            return needed
        refusal = Reply.parse(
            553, "5.6.7 SMTPUTF8 is required but was not offered by the server", self.remote
        )
        if not self.sender.isascii():
            raise _SessionEnd(refusal)
        for r in self.recipients:
            if r not in self.final and not r.isascii():
                self.final[r] = refusal
        return False if len(self.final) < len(self.recipients) else None

    async def mail_from(self, client: aiosmtplib.SMTP, smtputf8: bool) -> None:
        self.stage = "MAIL FROM"
        options: list[bytes] = []
        if client.supports_extension("size"):
            options.append(b"SIZE=%d" % len(self.raw))
        if not self.raw.isascii() and client.supports_extension("8bitmime"):
            options.append(b"BODY=8BITMIME")
        if smtputf8:
            options.append(b"SMTPUTF8")
        encoding = "utf-8" if smtputf8 else "ascii"
        address = b"FROM:<" + self.sender.encode(encoding) + b">"
        response = await client.execute_command(b"MAIL", address, *options)
        if not 200 <= response.code < 300:
            raise _SessionEnd(self.reply(response.code, response.message))

    async def rcpt_to(self, client: aiosmtplib.SMTP, smtputf8: bool) -> list[str]:
        self.stage = "RCPT TO"
        encoding = "utf-8" if smtputf8 else "ascii"
        accepted: list[str] = []
        for r in self.recipients:
            if r in self.final:
                continue
            address = b"TO:<" + _bare(r).encode(encoding) + b">"
            response = await client.execute_command(b"RCPT", address)
            reply = self.reply(response.code, response.message)
            if reply.success:
                accepted.append(r)
            elif response.code == 421:  # the server is closing the session
                raise _SessionEnd(reply)
            else:
                self.final[r] = reply
        return accepted

    async def data(self, client: aiosmtplib.SMTP, accepted: list[str]) -> None:
        self.stage = "DATA"
        try:
            response = await client.data(self.raw)
        except aiosmtplib.SMTPDataError as exc:
            reply = self.reply(exc.code, exc.message)
        else:
            reply = self.reply(response.code, response.message)
        for r in accepted:
            self.final[r] = reply

    def failure_reply(self, exc: Exception) -> tuple[Reply, bool]:
        """The reply for every recipient still open, and whether the failure was at
        session level (no reply, or 4xx before RCPT: another MX may do better)."""
        remote = self.remote
        before_rcpt = self.stage not in ("RCPT TO", "DATA")
        if isinstance(exc, _SessionEnd):
            reply = exc.reply
        elif isinstance(exc, aiosmtplib.SMTPResponseException):
            reply = self.reply(exc.code, exc.message)
        elif isinstance(exc, aiosmtplib.SMTPTimeoutError):
            reply = Reply.no_reply(f"timed out after {self.t.timeout:g}s in {self.stage}", remote)
        elif isinstance(exc, aiosmtplib.SMTPServerDisconnected):
            reply = Reply.no_reply(f"connection lost in {self.stage}", remote)
        elif isinstance(exc, aiosmtplib.SMTPConnectError):
            reply = Reply.no_reply(f"connection failed: {exc.message}", remote)
        elif isinstance(exc, ssl.SSLError):
            reply = Reply.no_reply(f"TLS handshake failed: {exc}", remote)
        elif isinstance(exc, aiosmtplib.SMTPException):
            reply = Reply.no_reply(f"{self.stage} failed: {exc.message}", remote)
        elif isinstance(exc, OSError):
            reply = Reply.no_reply(f"{self.stage} failed: {exc}", remote)
        else:
            log.error("unexpected error talking to %s", remote, exc_info=exc)
            reply = Reply.no_reply(f"internal error in {self.stage}: {exc!r}", remote)
        session_level = (
            reply.code is None
            or reply.code == 421  # the server closes the session, at any stage
            or (before_rcpt and 400 <= reply.code < 500)
        )
        return reply, session_level


class MxResolver(Protocol):
    async def mx_hosts(self, domain: str) -> list[str]:
        """Mail exchangers in preference order, ``[domain]`` when there is no MX.

        LookupError when the domain cannot receive mail (NXDOMAIN, null MX, no
        MX and no address); any other exception is a temporary failure."""
        ...


class NullMxError(LookupError):
    """The domain publishes a null MX (RFC 7505): it accepts no mail."""


class DnsTemporaryError(Exception):
    """The DNS lookup failed in a way that may go away (timeout, SERVFAIL, ...)."""


def order_mx(records: Iterable[tuple[int, str]], domain: str) -> list[str]:
    """MX (preference, exchange) pairs -> host names by preference (ties keep their
    order), without trailing dots, deduplicated. NullMxError when only a null MX
    ("." , RFC 7505) is published; a null MX among real ones is ignored."""
    ordered = sorted(records, key=lambda record: record[0])
    hosts = _unique(exchange.rstrip(".").lower() for _, exchange in ordered if exchange.rstrip("."))
    if not hosts:
        if ordered:
            raise NullMxError(f"{domain} publishes a null MX: it accepts no mail")
        raise LookupError(f"{domain} has no MX records")
    return hosts


class DnsResolver:
    """MxResolver on dnspython's asyncio resolver (the system's resolv.conf)."""

    def __init__(self, *, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self._resolver: dns.asyncresolver.Resolver | None = None

    def _get(self) -> dns.asyncresolver.Resolver:
        # Created on first use: reading resolv.conf can fail, which is a DNS failure.
        if self._resolver is None:
            self._resolver = dns.asyncresolver.Resolver()
        return self._resolver

    async def mx_hosts(self, domain: str) -> list[str]:
        try:
            answer = await self._get().resolve(domain, "MX", lifetime=self.timeout)
        except dns.resolver.NXDOMAIN:
            raise LookupError(f"{domain}: no such domain") from None
        except dns.resolver.NoAnswer:
            # RFC 5321 5.1: no MX -> the domain itself is the implicit MX, if it has an address.
            if await self._has_address(domain):
                return [domain.rstrip(".").lower()]
            raise LookupError(f"{domain} has no MX and no address records") from None
        except (dns.exception.DNSException, OSError) as exc:
            raise DnsTemporaryError(f"{domain}: {exc}") from exc
        records = [(int(r.preference), r.exchange.to_text()) for r in answer]
        return order_mx(records, domain)

    async def _has_address(self, domain: str) -> bool:
        for rdtype in ("A", "AAAA"):
            try:
                await self._get().resolve(domain, rdtype, lifetime=self.timeout)
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                continue
            except (dns.exception.DNSException, OSError) as exc:
                raise DnsTemporaryError(f"{domain}: {exc}") from exc
            return True
        return False


def _domain_literal(domain: str) -> str | None:
    """``[192.0.2.1]`` / ``[IPv6:2001:db8::1]`` -> the address (no MX lookup)."""
    if domain.startswith("[") and domain.endswith("]"):
        inner = domain[1:-1]
        return inner[5:] if inner[:5].lower() == "ipv6:" else inner
    return None


def _opportunistic_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class MxTransport:
    """Direct delivery to the recipients' domain by MX (opportunistic STARTTLS).

    Recipients are grouped by domain (one transaction per domain). MX hosts are
    tried in order; the next host is tried only for recipients that failed at
    session level on this one (connection failure, no reply, timeout, a 4xx
    to the greeting / EHLO / STARTTLS / MAIL FROM, or a 421 at any stage), never
    after a per-recipient RCPT or DATA reply. When every host failed, the last host's reply stands.
    NXDOMAIN / no MX and no address -> ``550 5.1.2``; null MX -> ``556 5.1.10``
    (RFC 7505); a temporary DNS failure -> ``no_reply("DNS lookup ... failed")``.
    """

    def __init__(
        self,
        *,
        resolver: MxResolver,
        helo_name: str,
        timeout: float,
        port: int = 25,
        tls_context: ssl.SSLContext | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self.resolver = resolver
        self.helo_name = helo_name
        self.timeout = timeout
        self.port = port
        self.recorder = recorder
        self.tls_context = tls_context if tls_context is not None else _opportunistic_context()

    async def deliver(self, mail: OutboundMail) -> dict[str, Reply]:
        recipients = _unique(mail.recipients)
        replies: dict[str, Reply] = {}
        by_domain: dict[str, list[str]] = {}
        for r in recipients:
            _, at, domain = _bare(r).rpartition("@")
            if not at or not domain:
                replies[r] = Reply.parse(553, "5.1.3 recipient address has no domain")
            else:
                by_domain.setdefault(domain.lower(), []).append(r)
        for domain, group in by_domain.items():
            replies.update(await self._deliver_domain(mail, domain, group))
        return {r: replies[r] for r in recipients}

    async def _hosts(self, domain: str) -> list[str] | Reply:
        literal = _domain_literal(domain)
        if literal is not None:
            return [literal]
        try:
            hosts = await self.resolver.mx_hosts(domain)
        except NullMxError as exc:
            return Reply.parse(556, f"5.1.10 {exc}")
        except LookupError as exc:
            return Reply.parse(550, f"5.1.2 domain has no mail exchanger: {exc}")
        except Exception as exc:
            return Reply.no_reply(f"DNS lookup for {domain} failed: {exc}")
        if not hosts:
            return Reply.no_reply(f"DNS lookup for {domain} gave no hosts")
        return hosts

    async def _deliver_domain(
        self, mail: OutboundMail, domain: str, recipients: list[str]
    ) -> dict[str, Reply]:
        hosts = await self._hosts(domain)
        if isinstance(hosts, Reply):
            return dict.fromkeys(recipients, hosts)
        final: dict[str, Reply] = {}
        pending = recipients
        for host in hosts:
            transport = SmtpTransport(
                target=RelayTarget(host=host, port=self.port, security="starttls"),
                helo_name=self.helo_name,
                timeout=self.timeout,
                tls_context=self.tls_context,
                recorder=self.recorder,
            )
            outcome = await transport._attempt(
                OutboundMail(mail_from=mail.mail_from, recipients=pending, raw=mail.raw)
            )
            final.update(outcome.replies)
            pending = [r for r in pending if r in outcome.retry_elsewhere]
            if not pending:
                break
        return final
