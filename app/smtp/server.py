"""The SMTP listener on the application's own event loop (not aiosmtpd's threaded Controller).

SUMMARY
    ``SmtpServer.start()`` binds with ``loop.create_server`` and builds one
    ``HarnessSMTP`` per connection. ``stop(grace)`` stops accepting, lets
    sessions that are inside a transaction finish it (their 250 is written),
    closes idle ones with ``421 4.3.2``, and aborts what is left after
    ``grace`` seconds.

    ``HarnessSMTP`` is aiosmtpd's ``SMTP`` with RFC 3463 enhanced codes on the
    replies aiosmtpd writes itself (size limits) and session tracking.

CONFIGURATION PARAMETERS
    host, smtp_port, smtp_hostname, smtp_max_message_size,
    smtp_max_line_length, smtp_timeout.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any, AnyStr

from aiosmtpd.smtp import SMTP

from app import __version__
from app.smtp.handler import IntakeHandler

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
}


class HarnessSMTP(SMTP):
    """aiosmtpd's protocol with enhanced codes and shutdown awareness."""

    def __init__(self, handler: Any, *, tracker: SessionTracker, line_length: int, **kw: Any):
        # aiosmtpd sizes its StreamReader from this attribute inside __init__.
        self.line_length_limit = line_length
        self._tracker = tracker
        self._greeted = False
        super().__init__(handler, **kw)

    @property
    def in_transaction(self) -> bool:
        env = getattr(self, "envelope", None)
        return env is not None and env.mail_from is not None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._tracker.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self._tracker.discard(self)
        super().connection_lost(error)

    async def push(self, status: AnyStr) -> None:
        raw = status.encode("utf-8") if isinstance(status, str) else bytes(status)
        if not self._greeted:
            self._greeted = True
            hook = getattr(self.event_handler, "connect_fault", None)
            reply = await hook(self) if hook is not None else None
            if reply is not None:
                # A connect-stage fault replaces the greeting and ends the session.
                if self.transport is not None and not self.transport.is_closing():
                    await super().push(reply)
                    self.transport.close()
                return
        await super().push(_REWRITES.get(raw, raw))
        if self._tracker.closing and not self.in_transaction:
            self.close_for_shutdown()

    def close_for_shutdown(self) -> None:
        transport = self.transport
        if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
            transport.write(b"421 4.3.2 Service shutting down\r\n")
            transport.close()


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
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.hostname = hostname
        self.max_message_size = max_message_size
        self.max_line_length = max_line_length
        self.timeout = timeout
        self.tracker = SessionTracker()
        self._server: asyncio.Server | None = None

    def _factory(self) -> HarnessSMTP:
        return HarnessSMTP(
            self.handler,
            tracker=self.tracker,
            line_length=self.max_line_length,
            data_size_limit=self.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=self.hostname,
            ident=f"Mailharness {__version__} ESMTP",
            timeout=self.timeout,
            loop=asyncio.get_running_loop(),
        )

    async def start(self, sock: socket.socket | None = None) -> None:
        loop = asyncio.get_running_loop()
        if sock is not None:
            self._server = await loop.create_server(self._factory, sock=sock)
        else:
            self._server = await loop.create_server(self._factory, host=self.host, port=self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("smtp listening on %s:%d", self.host, self.port)

    @property
    def listening(self) -> bool:
        return self._server is not None and self._server.is_serving()

    async def stop(self, grace: float = 10.0) -> None:
        if self._server is None:
            return
        self._server.close()
        await self.tracker.drain(grace)
        await self._server.wait_closed()
        self._server = None
