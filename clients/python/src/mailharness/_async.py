"""``AsyncMailharness``: the asyncio client (a thin driver over ``_ops``).

    async with AsyncMailharness("http://127.0.0.1:8025", key="mh_...") as mh:
        inbox = await mh.create_inbox("signup")
        msg = await mh.wait_for(inbox, subject="Welcome", timeout=10)

The same methods as ``Mailharness``, awaitable: each runs the operation built in
``mailharness._ops`` with an ``httpx.AsyncClient``, so both clients share every
request, error mapping and result type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TypeVar, Unpack

import httpx

from mailharness import _ops
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


class AsyncMailharness:
    """Asynchronous Mailharness API client. ``key`` is sent as ``Authorization: Bearer``."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=auth_headers(key), timeout=timeout, transport=transport
        )

    def __repr__(self) -> str:
        return f"AsyncMailharness({self.base_url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncMailharness:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _send(self, request: _ops.Request) -> httpx.Response:
        timeout = httpx.USE_CLIENT_DEFAULT if request.timeout is None else request.timeout
        try:
            return await self._http.request(
                request.method,
                request.path,
                params=tuple(request.params or ()),
                json=request.json,
                timeout=timeout,
            )
        except httpx.TransportError as exc:
            raise ConnectionFailed(self.base_url, exc) from exc

    async def _run(self, op: Op[T]) -> T:
        try:
            request = next(op)
            while True:
                request = op.send(await self._send(request))
        except StopIteration as done:
            result: T = done.value
            return result

    # inboxes
    async def create_inbox(
        self,
        address: str | None = None,
        *,
        name: str | None = None,
        tags: Sequence[str] | None = None,
        expires_in: int | None = None,
    ) -> Inbox:
        """A new inbox; ``address`` is a full address or a local part (random if omitted)."""
        return await self._run(_ops.create_inbox(address, name, tags, expires_in))

    async def get_inbox(self, inbox: Ref) -> Inbox:
        return await self._run(_ops.get_inbox(inbox))

    async def list_inboxes(
        self, *, tag: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> Page[Inbox]:
        return await self._run(_ops.list_inboxes(tag, limit, cursor))

    async def delete_inbox(self, inbox: Ref) -> None:
        await self._run(_ops.delete_inbox(inbox))

    async def empty_inbox(self, inbox: Ref) -> None:
        await self._run(_ops.empty_inbox(inbox))

    # messages
    async def messages(
        self,
        inbox: Ref,
        *,
        since: str | None = None,
        seen: bool | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[MessageSummary]:
        """An inbox's messages, newest first."""
        return await self._run(_ops.list_messages(inbox, since, seen, limit, cursor))

    async def search(
        self,
        q: str | None = None,
        *,
        inbox: Ref | None = None,
        submission_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[MessageSummary]:
        """Messages across this key's inboxes matching ``q``, newest first."""
        return await self._run(_ops.search(q, inbox, submission_id, limit, cursor))

    async def get_message(self, message: Ref) -> Message:
        return await self._run(_ops.get_message(message))

    async def raw(self, message: Ref) -> bytes:
        """The message's bytes exactly as received over SMTP."""
        return await self._run(_ops.raw(message))

    async def download(self, attachment: Attachment) -> bytes:
        """An attachment's decoded bytes."""
        return await self._run(_ops.attachment(attachment))

    async def mark_seen(self, message: Ref, seen: bool = True) -> Message:
        return await self._run(_ops.mark_seen(message, seen))

    async def delete_message(self, message: Ref) -> None:
        await self._run(_ops.delete_message(message))

    # waits
    async def wait_for(
        self, inbox: Ref, *, timeout: float = _ops.DEFAULT_WAIT, **filters: Unpack[Filters]
    ) -> Message:
        """The first matching message (already stored ones count unless ``since`` excludes
        them), as soon as it is stored; ``WaitTimeout`` after ``timeout`` seconds."""
        return (await self._run(_ops.wait_for(inbox, filters, 1, timeout)))[0]

    async def wait_for_all(
        self,
        inbox: Ref,
        count: int,
        *,
        timeout: float = _ops.DEFAULT_WAIT,
        **filters: Unpack[Filters],
    ) -> list[Message]:
        """The first ``count`` matching messages, oldest first; ``WaitTimeout`` otherwise."""
        return await self._run(_ops.wait_for(inbox, filters, count, timeout))

    async def quiet(
        self, inbox: Ref, *, timeout: float = _ops.DEFAULT_WAIT, **filters: Unpack[Filters]
    ) -> None:
        """Returns after ``timeout`` seconds if no matching mail arrived; raises
        ``QuietViolation`` (with the messages) as soon as one does."""
        await self._run(_ops.quiet(inbox, filters, timeout))

    # sending and deliveries
    async def send(
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
        return await self._run(
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

    async def sent(
        self, inbox: Ref, *, limit: int | None = None, cursor: str | None = None
    ) -> Page[Outbound]:
        return await self._run(_ops.list_sent(inbox, limit, cursor))

    async def release(self, message: Ref, to: Sequence[str]) -> Outbound:
        """Queue a stored message, unchanged, for delivery to ``to``."""
        return await self._run(_ops.release(message, to))

    async def outbound(self, outbound: Ref) -> Outbound:
        return await self._run(_ops.get_outbound(outbound))

    async def deliveries(
        self,
        *,
        inbox: Ref | None = None,
        state: str | None = None,
        recipient: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Delivery]:
        return await self._run(_ops.list_deliveries(inbox, state, recipient, limit, cursor))

    async def get_delivery(self, delivery: Ref) -> Delivery:
        return await self._run(_ops.get_delivery(delivery))

    async def wait_for_delivery(
        self,
        delivery: Ref,
        *,
        state: DeliveryState = "final",
        timeout: float = _ops.DEFAULT_WAIT,
    ) -> Delivery:
        """The delivery once it is in ``state``; ``DeliveryStateConflict`` if it ended in
        another final state, ``WaitTimeout`` after ``timeout`` seconds."""
        return await self._run(_ops.wait_for_delivery(delivery, state, timeout))

    # fault rules
    async def create_rule(self, stage: Stage, **spec: Unpack[RuleSpec]) -> Rule:
        """A fault rule, e.g. ``create_rule("rcpt", code=451, enhanced="4.7.1",
        inbox=inbox, times=2)`` for greylisting."""
        return await self._run(_ops.create_rule(_ops.rule_body(stage, spec)))

    async def rules(self) -> list[Rule]:
        return await self._run(_ops.list_rules())

    async def get_rule(self, rule: Ref) -> Rule:
        return await self._run(_ops.get_rule(rule))

    async def delete_rule(self, rule: Ref) -> None:
        await self._run(_ops.delete_rule(rule))

    # sessions
    async def sessions(
        self,
        *,
        inbox: Ref | None = None,
        direction: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Session]:
        return await self._run(_ops.list_sessions(inbox, direction, limit, cursor))

    async def get_session(self, session: Ref) -> Session:
        return await self._run(_ops.get_session(session))

    # keys (admin key) and health
    async def create_key(self, name: str) -> ApiKey:
        """A new API key (a tenant); its ``key`` is in this answer only."""
        return await self._run(_ops.create_key(name))

    async def keys(self) -> list[ApiKey]:
        return await self._run(_ops.list_keys())

    async def revoke_key(self, name_or_id: str) -> None:
        await self._run(_ops.revoke_key(name_or_id))

    async def ready(self) -> bool:
        """True when the server's store and SMTP listener are ready (``/readyz``)."""
        return await self._run(_ops.ready())
