"""``Mailharness``: the synchronous client (a thin driver over ``_ops``).

    with Mailharness("http://127.0.0.1:8025", key="mh_...") as mh:
        inbox = mh.create_inbox("signup")
        msg = mh.wait_for(inbox, subject="Welcome", timeout=10)
        assert msg.link(contains="/verify/")

Every method builds its operation in ``mailharness._ops`` and runs it here with an
``httpx.Client``; ``AsyncMailharness`` has the same methods, awaitable. Transport
failures become ``ConnectionFailed``; error answers the ``ApiError`` subclasses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TypeVar, Unpack

import httpx

from mailharness import _ops
from mailharness._bound import BoundInbox
from mailharness._config import DEFAULT_TIMEOUT, DEFAULT_URL, auth_headers
from mailharness._errors import ConnectionFailed
from mailharness._models import (
    ApiKey,
    Attachment,
    Delivery,
    Inbox,
    Message,
    MessageSummary,
    Outbound,
    Page,
    Rule,
    Session,
)
from mailharness._ops import DeliveryState, Filters, Op, Ref, RuleSpec, Stage

T = TypeVar("T")


class Mailharness:
    """Synchronous Mailharness API client. ``key`` is sent as ``Authorization: Bearer``."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url, headers=auth_headers(key), timeout=timeout, transport=transport
        )

    def __repr__(self) -> str:
        return f"Mailharness({self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Mailharness:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _send(self, request: _ops.Request) -> httpx.Response:
        timeout = httpx.USE_CLIENT_DEFAULT if request.timeout is None else request.timeout
        try:
            return self._http.request(
                request.method,
                request.path,
                params=tuple(request.params or ()),
                json=request.json,
                timeout=timeout,
            )
        except httpx.TransportError as exc:
            raise ConnectionFailed(self.base_url, exc) from exc

    def _run(self, op: Op[T]) -> T:
        try:
            request = next(op)
            while True:
                request = op.send(self._send(request))
        except StopIteration as done:
            result: T = done.value
            return result

    # inboxes
    def create_inbox(
        self,
        address: str | None = None,
        *,
        name: str | None = None,
        tags: Sequence[str] | None = None,
        expires_in: int | None = None,
    ) -> Inbox:
        """A new inbox; ``address`` is a full address or a local part (random if omitted)."""
        return self._run(_ops.create_inbox(address, name, tags, expires_in))

    def bind(self, inbox: Inbox) -> BoundInbox:
        """``inbox`` with this client attached: ``bound.wait_for(subject=...)`` and friends."""
        return BoundInbox(self, inbox)

    def get_inbox(self, inbox: Ref) -> Inbox:
        return self._run(_ops.get_inbox(inbox))

    def list_inboxes(
        self, *, tag: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> Page[Inbox]:
        return self._run(_ops.list_inboxes(tag, limit, cursor))

    def delete_inbox(self, inbox: Ref) -> None:
        self._run(_ops.delete_inbox(inbox))

    def empty_inbox(self, inbox: Ref) -> None:
        self._run(_ops.empty_inbox(inbox))

    # messages
    def messages(
        self,
        inbox: Ref,
        *,
        since: str | None = None,
        seen: bool | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[MessageSummary]:
        """An inbox's messages, newest first."""
        return self._run(_ops.list_messages(inbox, since, seen, limit, cursor))

    def search(
        self,
        q: str | None = None,
        *,
        inbox: Ref | None = None,
        submission_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[MessageSummary]:
        """Messages across this key's inboxes matching ``q``, newest first."""
        return self._run(_ops.search(q, inbox, submission_id, limit, cursor))

    def get_message(self, message: Ref) -> Message:
        return self._run(_ops.get_message(message))

    def raw(self, message: Ref) -> bytes:
        """The message's bytes exactly as received over SMTP."""
        return self._run(_ops.raw(message))

    def download(self, attachment: Attachment) -> bytes:
        """An attachment's decoded bytes."""
        return self._run(_ops.attachment(attachment))

    def mark_seen(self, message: Ref, seen: bool = True) -> Message:
        return self._run(_ops.mark_seen(message, seen))

    def delete_message(self, message: Ref) -> None:
        self._run(_ops.delete_message(message))

    # waits
    def wait_for(
        self, inbox: Ref, *, timeout: float = _ops.DEFAULT_WAIT, **filters: Unpack[Filters]
    ) -> Message:
        """The first matching message (already stored ones count unless ``since`` excludes
        them), as soon as it is stored; ``WaitTimeout`` after ``timeout`` seconds."""
        return self._run(_ops.wait_for(inbox, filters, 1, timeout))[0]

    def wait_for_all(
        self,
        inbox: Ref,
        count: int,
        *,
        timeout: float = _ops.DEFAULT_WAIT,
        **filters: Unpack[Filters],
    ) -> list[Message]:
        """The first ``count`` matching messages, oldest first; ``WaitTimeout`` otherwise."""
        return self._run(_ops.wait_for(inbox, filters, count, timeout))

    def quiet(
        self, inbox: Ref, *, timeout: float = _ops.DEFAULT_WAIT, **filters: Unpack[Filters]
    ) -> None:
        """Returns after ``timeout`` seconds if no matching mail arrived; raises
        ``QuietViolation`` (with the messages) as soon as one does."""
        self._run(_ops.quiet(inbox, filters, timeout))

    # sending and deliveries
    def send(
        self,
        inbox: Ref,
        *,
        to: Sequence[str],
        subject: str = "",
        text: str | None = None,
        html: str | None = None,
        cc: Sequence[str] | None = None,
        bcc: Sequence[str] | None = None,
        reply_to: str | Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
        attachments: Sequence[tuple[str, str, bytes]] | None = None,
    ) -> Outbound:
        """Send from ``inbox``; ``attachments`` are ``(filename, content_type, data)``."""
        return self._run(
            _ops.send(
                inbox,
                to=to,
                subject=subject,
                text=text,
                html=html,
                cc=cc,
                bcc=bcc,
                reply_to=reply_to,
                headers=headers,
                attachments=attachments,
            )
        )

    def sent(
        self, inbox: Ref, *, limit: int | None = None, cursor: str | None = None
    ) -> Page[Outbound]:
        return self._run(_ops.list_sent(inbox, limit, cursor))

    def release(self, message: Ref, to: Sequence[str]) -> Outbound:
        """Queue a stored message, unchanged, for delivery to ``to``."""
        return self._run(_ops.release(message, to))

    def outbound(self, outbound: Ref) -> Outbound:
        return self._run(_ops.get_outbound(outbound))

    def deliveries(
        self,
        *,
        inbox: Ref | None = None,
        state: str | None = None,
        recipient: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Delivery]:
        return self._run(_ops.list_deliveries(inbox, state, recipient, limit, cursor))

    def get_delivery(self, delivery: Ref) -> Delivery:
        return self._run(_ops.get_delivery(delivery))

    def wait_for_delivery(
        self,
        delivery: Ref,
        *,
        state: DeliveryState = "final",
        timeout: float = _ops.DEFAULT_WAIT,
    ) -> Delivery:
        """The delivery once it is in ``state``; ``DeliveryStateConflict`` if it ended in
        another final state, ``WaitTimeout`` after ``timeout`` seconds."""
        return self._run(_ops.wait_for_delivery(delivery, state, timeout))

    # fault rules
    def create_rule(self, stage: Stage, **spec: Unpack[RuleSpec]) -> Rule:
        """A fault rule, e.g. ``create_rule("rcpt", code=451, enhanced="4.7.1",
        inbox=inbox, times=2)`` for greylisting."""
        return self._run(_ops.create_rule(_ops.rule_body(stage, spec)))

    def rules(self) -> list[Rule]:
        return self._run(_ops.list_rules())

    def get_rule(self, rule: Ref) -> Rule:
        return self._run(_ops.get_rule(rule))

    def delete_rule(self, rule: Ref) -> None:
        self._run(_ops.delete_rule(rule))

    # sessions
    def sessions(
        self,
        *,
        inbox: Ref | None = None,
        direction: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Session]:
        return self._run(_ops.list_sessions(inbox, direction, limit, cursor))

    def get_session(self, session: Ref) -> Session:
        return self._run(_ops.get_session(session))

    # keys (admin key) and health
    def create_key(self, name: str) -> ApiKey:
        """A new API key (a tenant); its ``key`` is in this answer only."""
        return self._run(_ops.create_key(name))

    def keys(self) -> list[ApiKey]:
        return self._run(_ops.list_keys())

    def revoke_key(self, name_or_id: str) -> None:
        self._run(_ops.revoke_key(name_or_id))

    def ready(self) -> bool:
        """True when the server's store and SMTP listener are ready (``/readyz``)."""
        return self._run(_ops.ready())
