"""The SMTP listeners on the application's own event loop (not aiosmtpd's threaded Controller).

SUMMARY
    ``SmtpServer.start()`` binds ``smtp_port`` (and, when configured, the
    implicit-TLS ``smtps_port``) with ``loop.create_server`` and builds one
    ``HarnessSMTP`` per connection. ``stop(grace)`` stops accepting, lets
    sessions that are inside a transaction finish it (their 250 is written),
    closes idle ones with ``421 4.3.2``, and aborts what is left after
    ``grace`` seconds.

    ``HarnessSMTP`` is aiosmtpd's ``SMTP`` with RFC 3463 enhanced codes on the
    replies aiosmtpd writes itself, session tracking and admission limits.

    Security (RFC 3207 STARTTLS, RFC 8314 implicit TLS, RFC 4954 AUTH):
    when ``starttls`` is on, STARTTLS is offered on ``smtp_port`` with the
    context from ``app.smtp.tls`` (made once, at ``start()``); ``smtps_port``
    wraps every connection in TLS from the first byte (no STARTTLS offered
    there, AUTH offered at once). With ``require_tls`` everything but
    EHLO/NOOP/STARTTLS/QUIT before STARTTLS gets ``530 5.7.0``. AUTH
    PLAIN/LOGIN (``handler.Authenticator``) is neither offered nor accepted
    (``538 5.7.11``) on a plain-text session unless ``auth_allow_plaintext``,
    nor inside a mail transaction (``503 5.5.1``).

    Transcripts (``app.smtp.transcript``): with a ``recorder``, every
    connection records its commands and replies (never message data or AUTH
    secrets) and hands the transcript to the recorder when the session ends
    (QUIT, a server-side close, or the connection is lost). ``stop()`` waits
    until the recorder has stored what it was given.

    Limits and their replies:
      * message size: ``552 5.3.4`` (RFC 5321 4.5.3.1.7; SIZE, RFC 1870)
      * line length: ``500 5.5.2`` (RFC 5321 4.5.3.1.4 / 4.5.3.1.6)
      * recipients per message: ``452 4.5.3`` (RFC 5321 4.5.3.1.8 / 4.5.3.1.10;
        in ``handler.py``)
      * concurrent sessions over both listeners: ``421 4.7.0 Too many
        connections, try again later`` instead of the greeting, then close
        (RFC 5321 3.1 and 4.2.3: 421 "service not available, closing")
      * connections per client IP per sliding minute: ``421 4.7.0 Too many
        connections from your address, slow down``, then close (same RFCs)
      * idle session: closed after ``timeout`` seconds (RFC 5321 4.5.3.2.7
        suggests 5 minutes)

CONFIGURATION PARAMETERS
    host, smtp_port, smtps_port, smtp_hostname, smtp_max_message_size,
    smtp_max_line_length, smtp_timeout, smtp_starttls, smtp_require_tls,
    smtp_auth_allow_plaintext, smtp_max_connections,
    smtp_max_connections_per_minute (TLS files: see ``app.smtp.tls``).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any, AnyStr, cast

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, Session, TLSSetupException

from app import __version__
from app.metrics import Metrics
from app.smtp.handler import Authenticator, IntakeHandler, auth_user
from app.smtp.transcript import Transcript, TranscriptSink

log = logging.getLogger(__name__)

# Replies aiosmtpd writes itself, given RFC 3463 enhanced status codes.
_REWRITES: dict[bytes, bytes] = {
    b"552 Error: Too much mail data": b"552 5.3.4 Message too big for system",
    b"552 Error: message size exceeds fixed maximum message size": (
        b"552 5.3.4 Message size exceeds fixed maximum message size"
    ),
    b"500 Line too long (see RFC5321 4.5.3.1.6)": b"500 5.5.2 Line too long",
    b"500 Command line too long": b"500 5.5.2 Command line too long",
    b"503 Error: need MAIL command": b"503 5.5.1 Error: need MAIL command",
    b"503 Error: need RCPT command": b"503 5.5.1 Error: need RCPT command",
    b"221 Bye": b"221 2.0.0 Bye",
    b"530 Must issue a STARTTLS command first": b"530 5.7.0 Must issue a STARTTLS command first",
    b"220 Ready to start TLS": b"220 2.0.0 Ready to start TLS",
    b"454 TLS not available": b"454 4.7.0 TLS not available",
    b"554 Command refused due to lack of security": (
        b"554 5.7.0 Command refused due to lack of security"
    ),
    b"503 Already authenticated": b"503 5.5.1 Already authenticated",
    b"501 Not enough value": b"501 5.5.4 Syntax: AUTH mechanism [initial-response]",
    b"501 Too many values": b"501 5.5.4 Syntax: AUTH mechanism [initial-response]",
}

# Sent instead of the 220 greeting, then the connection is closed: RFC 5321 3.1 and
# 4.2.3 (421 "Service not available, closing transmission channel"), RFC 3463 X.7.0.
TOO_MANY_CONNECTIONS = "421 4.7.0 Too many connections, try again later"
TOO_FAST = "421 4.7.0 Too many connections from your address, slow down"
SHUTTING_DOWN = "421 4.3.2 Service shutting down"


class ConnectionRate:
    """Admitted connections per client address over a sliding window, in memory.

    At most ``max_clients`` addresses are remembered; past that the least
    recently seen one is forgotten (so the memory stays bounded whatever the
    number of clients, at the price of forgetting an old offender).
    """

    def __init__(
        self,
        per_window: int,
        *,
        window: float = 60.0,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_window = per_window
        self.window = window
        self.max_clients = max_clients
        self._clock = clock
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def allow(self, client: str) -> bool:
        """Count one connection from ``client``; False (not counted) when over the limit."""
        now = self._clock()
        hits = self._seen.get(client)
        if hits is None:
            hits = self._seen[client] = deque(maxlen=self.per_window)
            while len(self._seen) > self.max_clients:
                self._seen.popitem(last=False)
        else:
            self._seen.move_to_end(client)
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.per_window:
            return False
        hits.append(now)
        return True

    def __len__(self) -> int:
        return len(self._seen)


class ConnectionGate:
    """Admission before the greeting: the concurrent-session cap and the per-IP rate."""

    def __init__(self, *, max_connections: int, per_minute: int = 0) -> None:
        self.max_connections = max_connections
        self.rate = ConnectionRate(per_minute) if per_minute > 0 else None
        self.active = 0

    def enter(self, client: str | None) -> str | None:
        """None when admitted (the caller must ``leave()`` later), else the 421 reply."""
        if self.active >= self.max_connections:
            return TOO_MANY_CONNECTIONS
        if self.rate is not None and client is not None and not self.rate.allow(client):
            return TOO_FAST
        self.active += 1
        return None

    def leave(self) -> None:
        self.active -= 1


class _Session(Session):
    """aiosmtpd's session without the deprecation warning logged on every AUTH
    (``smtp_AUTH`` still sets the legacy ``login_data``)."""

    tenant_id: str | None = None  # set by an AUTH with an API key

    @property
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class _TapReader:
    """The connection's StreamReader, telling the transcript every byte the protocol
    reads (aiosmtpd has no hook for raw command lines). Everything else, attribute
    writes included (aiosmtpd rebinds ``_transport`` after STARTTLS), goes to the
    real reader."""

    _inner: asyncio.StreamReader
    _transcript: Transcript

    def __init__(self, reader: asyncio.StreamReader, transcript: Transcript) -> None:
        object.__setattr__(self, "_inner", reader)
        object.__setattr__(self, "_transcript", transcript)

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        data = await self._inner.readuntil(separator)
        self._transcript.client_bytes(data)
        return data

    async def readline(self) -> bytes:
        data = await self._inner.readline()
        self._transcript.client_bytes(data)
        return data

    async def read(self, n: int = -1) -> bytes:
        data = await self._inner.read(n)
        self._transcript.client_bytes(data)
        return data

    async def readexactly(self, n: int) -> bytes:
        data = await self._inner.readexactly(n)
        self._transcript.client_bytes(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._inner, name, value)


class HarnessSMTP(SMTP):
    """aiosmtpd's protocol with enhanced codes, admission limits and shutdown awareness."""

    def __init__(
        self,
        handler: Any,
        *,
        tracker: SessionTracker,
        gate: ConnectionGate | None = None,
        line_length: int,
        recorder: TranscriptSink | None = None,
        metrics: Metrics | None = None,
        **kw: Any,
    ):
        self._metrics = metrics
        # aiosmtpd sizes its StreamReader from this attribute inside __init__.
        self.line_length_limit = line_length
        self._tracker = tracker
        self._gate = gate
        self._recorder = recorder
        # The handler notes submissions here (``IntakeHandler.handle_DATA``).
        self.transcript: Transcript | None = (
            Transcript(direction="inbound") if recorder is not None else None
        )
        self._admission_checked = False
        self._admitted = False
        self._refusal: str | None = None
        self._greeted = False
        super().__init__(handler, **kw)

    @property
    def in_transaction(self) -> bool:
        env = getattr(self, "envelope", None)
        return env is not None and env.mail_from is not None

    @property
    def tls_active(self) -> bool:
        return self.session is not None and self.session.ssl is not None

    def _create_session(self) -> Session:
        return _Session(self.loop)

    def _cb_client_connected(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if self.transcript is not None:
            reader = cast(asyncio.StreamReader, _TapReader(reader, self.transcript))
        super()._cb_client_connected(reader, writer)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Called again (with a fresh session) after a STARTTLS handshake.
        self._observe()  # the session is about to be replaced
        super().connection_made(transport)
        assert self.session is not None
        if self.session.ssl is None and transport.get_extra_info("ssl_object") is not None:
            # Implicit TLS: the transport was TLS from the start, so aiosmtpd
            # (which only knows STARTTLS) did not note it.
            self.session.ssl = {
                key: transport.get_extra_info(key)
                for key in ("sslcontext", "peercert", "cipher", "compression", "ssl_object")
            }
        if self.transcript is not None:
            if self.transcript.client_address is None:
                self.transcript.client_address = _address(self.session.peer)
                self.transcript.server_address = _address(transport.get_extra_info("sockname"))
            self.transcript.note_tls(transport.get_extra_info("ssl_object"))
        self._tracker.add(self)
        if not self._admission_checked:
            self._admission_checked = True
            if self._gate is not None:
                self._refusal = self._gate.enter(_host(self.session.peer))
                self._admitted = self._refusal is None

    def connection_lost(self, error: Exception | None) -> None:
        self._tracker.discard(self)
        if self._admitted and self._gate is not None:
            self._admitted = False
            self._gate.leave()
        self._finish_transcript()
        super().connection_lost(error)

    def _observe(self) -> None:
        """Copy what the session knows into the transcript (HELO, AUTH user, TLS)."""
        transcript, session = self.transcript, self.session
        if transcript is None or session is None:
            return
        if session.host_name:
            transcript.helo = str(session.host_name)
        user = auth_user(session)
        if user:
            transcript.auth_user = user
        if session.ssl and transcript.tls_version is None:
            transcript.note_tls(session.ssl.get("ssl_object"))

    def _finish_transcript(self) -> None:
        """Hand the transcript over once: at QUIT, a server-side close or connection
        loss, whichever comes first."""
        transcript = self.transcript
        if transcript is None or transcript.finished or self._recorder is None:
            return
        self._observe()
        transcript.finish()
        try:
            self._recorder.record(transcript)
        except Exception:
            log.exception("smtp session transcript not recorded")

    async def handle_exception(self, error: Exception) -> str:
        if isinstance(error, TLSSetupException):
            # Routine: e.g. a client that does not trust the certificate.
            # aiosmtpd closes the connection; this reply is not sent.
            peer = _host(self.session.peer) if self.session else None
            log.info("smtp tls handshake failed client=%s: %r", peer, error.__cause__)
            return "454 4.7.0 TLS handshake failed"
        return await super().handle_exception(error)

    async def smtp_STARTTLS(self, arg: str) -> None:
        if self.tls_active:  # RFC 3207 4.2: not offered, and not accepted, a second time
            await self.push("503 5.5.1 TLS already active")
            return
        await super().smtp_STARTTLS(arg)

    # -- AUTH with API keys -----------------------------------------------------
    # aiosmtpd's authenticator is synchronous; a key check needs the store. So the
    # built-in PLAIN/LOGIN decoders run as usual, the secret is held for the length
    # of one call only, and the key is then checked asynchronously here.
    _secret: bytes | None = None

    def _authenticate(self, mechanism: str, auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            self._secret = auth_data.password
        result: AuthResult = super()._authenticate(mechanism, auth_data)
        return result

    async def auth_PLAIN(self, _: Any, args: list[str]) -> Any:
        return await self._check_key(await super().auth_PLAIN(_, args))

    async def auth_LOGIN(self, _: Any, args: list[str]) -> Any:
        return await self._check_key(await super().auth_LOGIN(_, args))

    async def _check_key(self, result: Any) -> Any:
        secret, self._secret = self._secret, None
        keys = getattr(self.event_handler, "keys", None)
        if not isinstance(result, AuthResult) or not result.success or keys is None:
            return result
        if secret is None or not await keys.keyed_mode():
            return result  # open mode: any credentials, no tenant
        tenant = await keys.tenant_for(secret.decode("utf-8", "replace"))
        if tenant is None:
            log.info("smtp auth refused: not a valid API key")
            return AuthResult(success=False, handled=False)  # 535 5.7.8
        assert isinstance(self.session, _Session)
        self.session.tenant_id = tenant
        return result

    async def smtp_AUTH(self, arg: str) -> None:
        if self.in_transaction:  # RFC 4954 4: not during a mail transaction
            await self.push("503 5.5.1 AUTH not permitted during a mail transaction")
            return
        await super().smtp_AUTH(arg)

    async def push(self, status: AnyStr) -> None:
        raw = status.encode("utf-8") if isinstance(status, str) else bytes(status)
        if not self._greeted:
            self._greeted = True
            reply = self._refusal
            if reply is not None:
                peer = _host(self.session.peer) if self.session is not None else None
                log.info("smtp refused client=%s reply=%r", peer, reply)
            else:
                hook = getattr(self.event_handler, "connect_fault", None)
                reply = await hook(self) if hook is not None else None
            if self._metrics is not None:
                self._metrics.smtp_sessions.labels("refused" if reply else "accepted").inc()
            if reply is not None:
                # A limit or connect-stage fault replaces the greeting and ends the session.
                if self.transport is not None and not self.transport.is_closing():
                    self._note_reply(reply)
                    await super().push(reply)
                    self.transport.close()
                    self._finish_transcript()
                return
        raw = _REWRITES.get(raw, raw)
        self._note_reply(raw)
        if self._metrics is not None:
            self._count(raw)
        if raw.startswith(b"221"):
            # QUIT: the session is over. Hand the transcript over before the client
            # can see the reply, so a client that got its 221 finds it recorded.
            self._finish_transcript()
        await super().push(raw)
        if self._tracker.closing and not self.in_transaction:
            self.close_for_shutdown()

    def _count(self, raw: bytes) -> None:
        assert self._metrics is not None
        code = raw[:3]
        if raw.startswith(b"250 2.0.0 Ok: queued"):
            self._metrics.smtp_transactions.labels("accepted", "250").inc()
        elif code[:1] in (b"4", b"5") and code.isdigit():
            self._metrics.smtp_transactions.labels("rejected", code.decode()).inc()

    def _note_reply(self, reply: str | bytes) -> None:
        if self.transcript is not None:
            self._observe()
            self.transcript.server(reply)

    def close_for_shutdown(self) -> None:
        transport = self.transport
        if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
            self._note_reply(SHUTTING_DOWN)
            transport.write(SHUTTING_DOWN.encode() + b"\r\n")
            transport.close()
            self._finish_transcript()


class SessionTracker:
    """Live sessions, so shutdown can let transactions finish."""

    def __init__(self) -> None:
        self.sessions: set[HarnessSMTP] = set()
        self.closing = False
        self._empty = asyncio.Event()
        self._empty.set()

    def add(self, session: HarnessSMTP) -> None:
        self.sessions.add(session)
        self._empty.clear()

    def discard(self, session: HarnessSMTP) -> None:
        self.sessions.discard(session)
        if not self.sessions:
            self._empty.set()

    async def drain(self, grace: float) -> None:
        self.closing = True
        for session in list(self.sessions):
            if not session.in_transaction:
                session.close_for_shutdown()
        try:
            await asyncio.wait_for(self._empty.wait(), grace)
        except TimeoutError:
            for session in list(self.sessions):
                if isinstance(session.transport, asyncio.WriteTransport):
                    session.transport.abort()


def _host(peer: Any) -> str | None:
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer) if peer else None


def _address(sockname: Any) -> str | None:
    """``("192.0.2.1", 25)`` -> ``192.0.2.1:25``; ``[2001:db8::1]:25`` for IPv6."""
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        host = str(sockname[0])
        return f"[{host}]:{sockname[1]}" if ":" in host else f"{host}:{sockname[1]}"
    return str(sockname) if sockname else None


class SmtpServer:
    def __init__(
        self,
        *,
        handler: IntakeHandler,
        host: str,
        port: int,
        hostname: str,
        max_message_size: int,
        max_line_length: int,
        timeout: float,
        tls: Callable[[], ssl.SSLContext] | None = None,
        starttls: bool = True,
        smtps_port: int | None = None,
        require_tls: bool = False,
        auth_allow_plaintext: bool = False,
        authenticator: Authenticator | None = None,
        max_connections: int = 200,
        max_connections_per_minute: int = 0,
        recorder: TranscriptSink | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        """``tls`` makes the server's TLS context; it is called once, in ``start()``
        (it may generate the certificate). Without it there is no STARTTLS and no
        ``smtps_port``. ``recorder`` receives every session's transcript."""
        if (require_tls or smtps_port is not None) and tls is None:
            raise ValueError("require_tls and smtps_port need a TLS context")
        self.handler = handler
        self.host = host
        self.port = port
        self.hostname = hostname
        self.max_message_size = max_message_size
        self.max_line_length = max_line_length
        self.timeout = timeout
        self.smtps_port = smtps_port
        self.starttls = starttls and tls is not None
        self.require_tls = require_tls
        self.auth_allow_plaintext = auth_allow_plaintext
        # The AUTH seam: Authenticator(verify=...) decides; the default takes anything.
        self.authenticator = authenticator or Authenticator()
        self.recorder = recorder
        self.metrics = metrics
        self.tracker = SessionTracker()
        self.gate = ConnectionGate(
            max_connections=max_connections, per_minute=max_connections_per_minute
        )
        self._make_tls = tls
        self.tls_context: ssl.SSLContext | None = None
        self._server: asyncio.Server | None = None
        self._smtps: asyncio.Server | None = None

    def _factory(self, *, implicit_tls: bool = False) -> HarnessSMTP:
        return HarnessSMTP(
            self.handler,
            tracker=self.tracker,
            gate=self.gate,
            line_length=self.max_line_length,
            recorder=self.recorder,
            metrics=self.metrics,
            data_size_limit=self.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=self.hostname,
            ident=f"Mailharness {__version__} ESMTP",
            timeout=self.timeout,
            # On smtps_port the session is encrypted before the greeting: no
            # STARTTLS to offer or require, and AUTH is safe at once.
            tls_context=self.tls_context if self.starttls and not implicit_tls else None,
            require_starttls=self.require_tls and not implicit_tls,
            auth_require_tls=not (implicit_tls or self.auth_allow_plaintext),
            authenticator=self.authenticator,
            loop=asyncio.get_running_loop(),
        )

    def _smtps_factory(self) -> HarnessSMTP:
        return self._factory(implicit_tls=True)

    async def start(
        self, sock: socket.socket | None = None, *, smtps_sock: socket.socket | None = None
    ) -> None:
        loop = asyncio.get_running_loop()
        wants_tls = self.starttls or smtps_sock is not None or self.smtps_port is not None
        if wants_tls and self._make_tls is not None and self.tls_context is None:
            self.tls_context = await asyncio.to_thread(self._make_tls)
        if sock is not None:
            self._server = await loop.create_server(self._factory, sock=sock)
        else:
            self._server = await loop.create_server(self._factory, host=self.host, port=self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info(
            "smtp listening on %s:%d%s",
            self.host,
            self.port,
            " (STARTTLS" + (" required)" if self.require_tls else ")") if self.starttls else "",
        )
        if smtps_sock is None and self.smtps_port is None:
            return
        if self.tls_context is None:
            self._server.close()
            self._server = None
            raise ValueError("an smtps listener needs a TLS context")
        try:
            if smtps_sock is not None:
                self._smtps = await loop.create_server(
                    self._smtps_factory, sock=smtps_sock, ssl=self.tls_context
                )
            else:
                self._smtps = await loop.create_server(
                    self._smtps_factory, host=self.host, port=self.smtps_port, ssl=self.tls_context
                )
        except BaseException:
            self._server.close()
            self._server = None
            raise
        self.smtps_port = self._smtps.sockets[0].getsockname()[1]
        log.info("smtps (implicit TLS) listening on %s:%d", self.host, self.smtps_port)

    @property
    def listening(self) -> bool:
        return self._server is not None and self._server.is_serving()

    async def stop(self, grace: float = 10.0) -> None:
        servers = [s for s in (self._server, self._smtps) if s is not None]
        if not servers:
            return
        for server in servers:
            server.close()
        await self.tracker.drain(grace)
        for server in servers:
            await server.wait_closed()
        self._server = self._smtps = None
        if self.recorder is not None:
            await self.recorder.flush()
