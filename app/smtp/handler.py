"""aiosmtpd hooks for intake: sender/recipient policy, and DATA -> the ingest funnel.

SUMMARY
    MAIL checks the reverse-path syntax (``<>`` allowed). RCPT checks the
    address and, with ``smtp_strict``, that an inbox exists (550 5.1.1).
    Fault rules (``app.faults``) are consulted at connect, MAIL, RCPT and DATA
    and may delay, replace the reply, or drop the connection.
    DATA hands the raw bytes to ``Ingest.accept`` and answers
    ``250 2.0.0 Ok: queued as <submission_id>`` only after the commit; a store
    failure answers ``451 4.3.0`` so the client retries. One log line per
    accepted or rejected transaction; never a body in the logs. An accepted
    submission (its id and the inboxes it landed in) is noted on the
    session's transcript when the server keeps one (``server.transcript``).

    More than ``max_recipients`` RCPTs in one transaction get
    ``452 4.5.3 Too many recipients`` (RFC 5321 4.5.3.1.8 / 4.5.3.1.10: 452,
    not 552; the client sends the rest in another transaction).

    At the end of DATA a header block with more than ``max_header_fields``
    fields or ``max_header_size`` bytes gets ``552 5.3.4`` (RFC 3463 X.3.4:
    too big for the system; resending the same message cannot help). A full
    inbox gets ``452 4.2.2`` (``552 5.2.2`` when the message alone exceeds its
    byte quota) and a tenant at its inbox limit ``452 4.3.1`` (``app.quota``).

    Key mode: an unauthenticated client reaches only existing inboxes, unless
    ``catchall_key`` names an active key: unknown addresses then become inboxes
    of that key's tenant.

    ``Authenticator`` is aiosmtpd's ``authenticator`` callable for AUTH PLAIN
    and LOGIN. Its ``verify(username, password, mechanism)`` seam decides;
    the default accepts any pair. Only the username is kept (in the session,
    then ``Envelope.authenticated``); the password is never logged or stored.

CONFIGURATION PARAMETERS
    smtp_strict, smtp_max_recipients, smtp_max_header_fields, smtp_max_header_size,
    catchall_key.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import AuthResult, LoginPassword

from app.addresses import valid_address
from app.errors import InboxLimit, MailboxFull, NotFound, StoreUnavailable
from app.faults import FaultEngine, Stage, inbox_ids_for
from app.ingest import Envelope, Ingest
from app.mail import header_block
from app.services.keys import Keys

log = logging.getLogger(__name__)


def _peer_host(peer: Any) -> str | None:
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer) if peer else None


# (username, password, mechanism) -> accept? Synchronous: aiosmtpd 1.4.6 calls the
# authenticator without awaiting it, so a check against the store needs a cache.
Verify = Callable[[str, bytes, str], bool]


def accept_any(_username: str, _password: bytes, _mechanism: str) -> bool:
    """The default ``verify``: a test harness takes any credentials."""
    return True


@dataclass(frozen=True)
class AuthIdentity:
    """What a successful AUTH leaves in ``session.auth_data``: never the password."""

    login: str


class Authenticator:
    """aiosmtpd's ``authenticator`` (AUTH PLAIN and LOGIN hand it a ``LoginPassword``)."""

    def __init__(self, verify: Verify = accept_any) -> None:
        self.verify = verify

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        peer = _peer_host(session.peer)
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)  # 535 5.7.8
        username = auth_data.login.decode("utf-8", "replace")
        try:
            ok = bool(username) and self.verify(username, auth_data.password, mechanism)
        except Exception as exc:
            # Never the exception text: it might quote the password.
            log.error(
                "smtp auth check crashed client=%s user=%s (%s)", peer, username, type(exc).__name__
            )
            return AuthResult(
                success=False,
                handled=False,
                message="454 4.7.0 Temporary authentication failure",
            )
        log.info(
            "smtp auth client=%s mechanism=%s user=%s result=%s",
            peer,
            mechanism,
            username,
            "ok" if ok else "refused",
        )
        if not ok:
            return AuthResult(success=False, handled=False)  # 535 5.7.8 credentials invalid
        return AuthResult(success=True, auth_data=AuthIdentity(login=username))


class IntakeHandler:
    """The handler object aiosmtpd calls; thin by design."""

    def __init__(
        self,
        *,
        ingest: Ingest,
        strict: bool,
        faults: FaultEngine | None = None,
        max_recipients: int = 100,
        keys: Keys | None = None,
        loopback: bool = True,
        catchall_key: str | None = None,
        max_header_fields: int = 1000,
        max_header_size: int = 256 * 1024,
    ) -> None:
        self.catchall_key = catchall_key
        self.max_header_fields = max_header_fields
        self.max_header_size = max_header_size
        self.ingest = ingest
        self.strict = strict
        self.faults = faults
        self.max_recipients = max_recipients
        self.keys = keys  # HarnessSMTP checks AUTH passwords against these in key mode
        self.loopback = loopback

    async def _keyed(self) -> bool:
        return self.keys is not None and await self.keys.keyed_mode()

    async def _catchall_tenant(self) -> str | None:
        """Key mode: the tenant that receives unauthenticated catch-all inboxes, if any."""
        if self.keys is None or not self.catchall_key:
            return None
        return await self.keys.tenant_of(self.catchall_key)

    async def _fault(
        self,
        server: Any,
        stage: Stage,
        *,
        sender: str | None = None,
        recipients: Sequence[str] = (),
    ) -> str | None:
        """The reply a fault rule imposes at this stage, or None to carry on."""
        if self.faults is None or not await self.faults.has_rules(stage):
            return None
        inbox_ids: list[str] = []
        if recipients and await self.faults.wants_inbox_ids(stage):
            inbox_ids = await inbox_ids_for(self.faults.db, recipients)
        fault = await self.faults.check(
            stage=stage, sender=sender, recipients=recipients, inbox_ids=inbox_ids
        )
        if fault is None:
            return None
        if fault.delay:
            await asyncio.sleep(fault.delay)  # the rule asks for a slow server
        peer = _peer_host(server.session.peer) if server.session else None
        if fault.disconnect:
            log.info(
                "smtp fault client=%s stage=%s rule=%s action=disconnect",
                peer,
                stage,
                fault.rule_id,
            )
            if server.transport is not None:
                server.transport.close()
            return "421 4.4.2 Connection dropped (fault rule)"
        if fault.proceeds:
            return None
        log.info(
            "smtp fault client=%s stage=%s rule=%s code=%s", peer, stage, fault.rule_id, fault.code
        )
        return fault.smtp_reply()

    async def connect_fault(self, server: Any) -> str | None:
        """Called by the server before the greeting; a reply here replaces it."""
        return await self._fault(server, "connect")

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        # aiosmtpd pipelines commands already; say so, and that we use RFC 3463 codes.
        return [*responses[:-1], "250-PIPELINING", "250-ENHANCEDSTATUSCODES", responses[-1]]

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        # The null reverse-path stays "<>" in the envelope: aiosmtpd reads an empty
        # mail_from as "no MAIL yet". Ingest records it as "".
        if address != "<>" and not valid_address(address):
            log.info("smtp rejected client=%s stage=mail code=553", _peer_host(session.peer))
            return "553 5.1.7 Bad sender address syntax"
        faulted = await self._fault(server, "mail", sender=_sender(address))
        if faulted is not None:
            return faulted
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        # RFC 5321 4.5.3.1.8 (buffer at least 100) and 4.5.3.1.10 (the reply is 452).
        if len(envelope.rcpt_tos) >= self.max_recipients:
            log.info(
                "smtp rejected client=%s stage=rcpt code=452 reason=too-many-recipients",
                _peer_host(session.peer),
            )
            return "452 4.5.3 Too many recipients"
        if not valid_address(address):
            log.info("smtp rejected client=%s stage=rcpt code=501", _peer_host(session.peer))
            return "501 5.1.3 Bad recipient address syntax"
        if self.strict:
            try:
                known = await self.ingest.known_recipient(address)
            except Exception:
                log.exception("smtp rcpt lookup failed")
                return "451 4.3.0 Temporary lookup failure, try again later"
            if not known:
                log.info("smtp rejected client=%s stage=rcpt code=550", _peer_host(session.peer))
                return f"550 5.1.1 <{address}>: Recipient address rejected: no such inbox"
        if not session.authenticated and await self._keyed():
            # Key mode: unauthenticated mail only reaches inboxes that exist; a new
            # (catch-all) inbox needs an AUTH with the key of its tenant.
            try:
                known = await self.ingest.known_recipient(address)
            except Exception:
                log.exception("smtp rcpt lookup failed")
                return "451 4.3.0 Temporary lookup failure, try again later"
            if not known and await self._catchall_tenant() is None:
                log.info(
                    "smtp rejected client=%s stage=rcpt code=550 reason=auth",
                    _peer_host(session.peer),
                )
                return f"550 5.7.1 <{address}>: no such inbox; authenticate to create one"
        faulted = await self._fault(
            server, "rcpt", sender=_sender(envelope.mail_from), recipients=[address]
        )
        if faulted is not None:
            return faulted
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        started = time.perf_counter()
        raw: bytes = envelope.original_content or b""
        fields, header_size = header_block(raw)
        if fields > self.max_header_fields or header_size > self.max_header_size:
            log.info(
                "smtp rejected client=%s stage=data code=552 reason=header fields=%d bytes=%d",
                _peer_host(session.peer),
                fields,
                header_size,
            )
            if fields > self.max_header_fields:
                return (
                    f"552 5.3.4 Message header has too many fields "
                    f"({fields}, at most {self.max_header_fields})"
                )
            return (
                f"552 5.3.4 Message header is too large "
                f"({header_size} bytes, at most {self.max_header_size})"
            )
        keyed = await self._keyed()
        tenant_id = getattr(session, "tenant_id", None)
        if tenant_id is None and keyed and not session.authenticated:
            tenant_id = await self._catchall_tenant()
        env = Envelope(
            mail_from="" if envelope.mail_from == "<>" else envelope.mail_from or "",
            rcpt_to=list(envelope.rcpt_tos),
            client_address=_peer_host(session.peer),
            helo=session.host_name,
            tls=session.ssl is not None,
            authenticated=auth_user(session),
            tenant_id=tenant_id,
            # Never an open relay: only authenticated submissions are relayed onward,
            # except in open mode on loopback, where everyone is local anyway.
            may_relay=bool(session.authenticated) or (self.loopback and not keyed),
        )
        faulted = await self._fault(
            server, "data", sender=env.mail_from, recipients=list(env.rcpt_to)
        )
        if faulted is not None:
            return faulted  # nothing is stored for a faulted transaction
        try:
            result = await self.ingest.accept(raw=raw, envelope=env)
        except StoreUnavailable:
            log.warning(
                "smtp rejected client=%s stage=data code=451 reason=store", env.client_address
            )
            return "451 4.3.0 Temporary failure: message not stored, try again later"
        except NotFound as exc:
            log.info("smtp rejected client=%s stage=data code=550", env.client_address)
            return f"550 5.1.1 {exc.detail}"
        except MailboxFull as exc:
            reply = exc.smtp_reply()
            log.info("smtp rejected client=%s stage=data code=%s", env.client_address, reply[:3])
            return reply
        except InboxLimit as exc:
            log.info(
                "smtp rejected client=%s stage=data code=452 reason=inboxes", env.client_address
            )
            return f"452 4.3.1 {exc.detail}"
        except Exception:
            log.exception("smtp ingest crashed")
            return "451 4.3.0 Temporary failure: message not stored, try again later"
        log.info(
            "smtp accepted submission=%s client=%s rcpts=%d size=%d messages=%s ms=%.1f",
            result.submission_id,
            env.client_address,
            len(env.rcpt_to),
            len(raw),
            ",".join(m.id for m in result.messages),
            (time.perf_counter() - started) * 1000,
        )
        transcript = getattr(server, "transcript", None)
        if transcript is not None:
            transcript.note_submission(result.submission_id, [m.inbox_id for m in result.messages])
        return f"250 2.0.0 Ok: queued as {result.submission_id}"


def _sender(mail_from: str | None) -> str:
    return "" if mail_from in (None, "<>") else str(mail_from)


def auth_user(session: Any) -> str | None:
    """The AUTH login of an aiosmtpd session, or None (never anything else of AUTH)."""
    if not getattr(session, "authenticated", False):
        return None
    data = getattr(session, "auth_data", None)
    login = getattr(data, "login", None)
    if isinstance(login, bytes):
        return login.decode("utf-8", "replace")
    return str(login) if login else None
