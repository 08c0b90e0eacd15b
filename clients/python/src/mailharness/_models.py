"""Typed result objects built from the API's JSON (the contract in docs/api.md).

Each class has ``from_json(data)``; the original JSON stays in ``.data`` so fields
added by newer servers are never lost. Times are timezone-aware ``datetime``s (UTC).
``Message`` carries the helpers tests use most: ``link(contains=...)``, ``code()``,
``header(name)``; ``Attachment`` knows its message so a client can download it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from mailharness._errors import NoMatch

T = TypeVar("T")
Json = dict[str, Any]


def parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


@dataclass(frozen=True, kw_only=True)
class Page(Generic[T]):
    """One page of a list endpoint; iterate it for its items."""

    items: list[T]
    next_cursor: str | None = None

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @classmethod
    def parse(cls, data: Json, item: Callable[[Json], T]) -> Page[T]:
        return cls(items=[item(i) for i in data["items"]], next_cursor=data.get("next_cursor"))


@dataclass(frozen=True, kw_only=True)
class Address:
    name: str | None
    address: str

    def __str__(self) -> str:
        return f"{self.name} <{self.address}>" if self.name else self.address

    @classmethod
    def from_json(cls, data: Json) -> Address:
        return cls(name=data.get("name"), address=data["address"])


def _addresses(values: list[Json] | None) -> list[Address]:
    return [Address.from_json(v) for v in values or []]


@dataclass(frozen=True, kw_only=True)
class Inbox:
    id: str
    address: str
    name: str | None
    tags: list[str]
    created_at: datetime
    expires_at: datetime | None
    message_count: int
    data: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Json) -> Inbox:
        return cls(
            id=data["id"],
            address=data["address"],
            name=data.get("name"),
            tags=list(data.get("tags") or []),
            created_at=_time(data["created_at"]),
            expires_at=parse_time(data.get("expires_at")),
            message_count=data.get("message_count", 0),
            data=data,
        )


@dataclass(frozen=True, kw_only=True)
class MessageSummary:
    id: str
    inbox_id: str
    subject: str | None
    from_: Address | None
    to: list[Address]
    received_at: datetime
    seen: bool
    size: int
    has_attachments: bool
    data: Json = field(default_factory=dict, repr=False, compare=False)

    @staticmethod
    def _summary_fields(data: Json) -> Json:
        sender = data.get("from")
        return {
            "id": data["id"],
            "inbox_id": data["inbox_id"],
            "subject": data.get("subject"),
            "from_": Address.from_json(sender) if sender else None,
            "to": _addresses(data.get("to")),
            "received_at": _time(data["received_at"]),
            "seen": bool(data.get("seen", False)),
            "size": data.get("size", 0),
            "has_attachments": bool(data.get("has_attachments", False)),
            "data": data,
        }

    @classmethod
    def from_json(cls, data: Json) -> MessageSummary:
        return cls(**cls._summary_fields(data))


@dataclass(frozen=True, kw_only=True)
class Header:
    name: str
    value: str


@dataclass(frozen=True, kw_only=True)
class Attachment:
    id: str
    message_id: str
    filename: str | None
    content_type: str
    size: int
    content_id: str | None
    disposition: str

    @classmethod
    def from_json(cls, data: Json, message_id: str) -> Attachment:
        return cls(
            id=data["id"],
            message_id=message_id,
            filename=data.get("filename"),
            content_type=data.get("content_type", "application/octet-stream"),
            size=data.get("size", 0),
            content_id=data.get("content_id"),
            disposition=data.get("disposition", "attachment"),
        )


@dataclass(frozen=True, kw_only=True)
class Envelope:
    mail_from: str
    rcpt_to: list[str]
    client_address: str | None
    helo: str | None
    tls: bool
    authenticated: str | None

    @classmethod
    def from_json(cls, data: Json) -> Envelope:
        return cls(
            mail_from=data.get("mail_from", ""),
            rcpt_to=list(data.get("rcpt_to") or []),
            client_address=data.get("client_address"),
            helo=data.get("helo"),
            tls=bool(data.get("tls", False)),
            authenticated=data.get("authenticated"),
        )


@dataclass(frozen=True, kw_only=True)
class Message(MessageSummary):
    """A full message: bodies, headers, attachments, envelope, extracted links and codes."""

    message_id: str | None
    submission_id: str | None
    cc: list[Address]
    bcc: list[Address]
    reply_to: list[Address]
    date: datetime | None
    headers: list[Header]
    text: str | None
    html: str | None
    attachments: list[Attachment]
    envelope: Envelope
    links: list[str]
    codes: list[str]
    parse_error: str | None

    @classmethod
    def from_json(cls, data: Json) -> Message:
        return cls(
            **cls._summary_fields(data),
            message_id=data.get("message_id"),
            submission_id=data.get("submission_id"),
            cc=_addresses(data.get("cc")),
            bcc=_addresses(data.get("bcc")),
            reply_to=_addresses(data.get("reply_to")),
            date=parse_time(data.get("date")),
            headers=[Header(name=h["name"], value=h["value"]) for h in data.get("headers") or []],
            text=data.get("text"),
            html=data.get("html"),
            attachments=[
                Attachment.from_json(a, data["id"]) for a in data.get("attachments") or []
            ],
            envelope=Envelope.from_json(data.get("envelope") or {}),
            links=list(data.get("links") or []),
            codes=list(data.get("codes") or []),
            parse_error=data.get("parse_error"),
        )

    def link(self, contains: str | None = None) -> str:
        """The first link (in document order) containing ``contains``; ``NoMatch`` if none."""
        for url in self.links:
            if contains is None or contains in url:
                return url
        wanted = f" containing {contains!r}" if contains else ""
        raise NoMatch(f"no link{wanted} in message {self.subject!r}; its links: {self.links}")

    def code(self, length: int | None = None) -> str:
        """The first one-time code (of ``length`` digits, if given); ``NoMatch`` if none."""
        for code in self.codes:
            if length is None or len(code) == length:
                return code
        wanted = f" of {length} digits" if length else ""
        raise NoMatch(f"no code{wanted} in message {self.subject!r}; its codes: {self.codes}")

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        values = self.header_values(name)
        return values[0] if values else None

    def header_values(self, name: str) -> list[str]:
        return [h.value for h in self.headers if h.name.lower() == name.lower()]

    def attachment(self, filename: str) -> Attachment:
        """The attachment called ``filename``; ``NoMatch`` if there is none."""
        for att in self.attachments:
            if att.filename == filename:
                return att
        names = [a.filename for a in self.attachments]
        raise NoMatch(f"no attachment {filename!r} in message {self.subject!r}; it has {names}")


@dataclass(frozen=True, kw_only=True)
class SmtpReply:
    code: int | None
    enhanced: str | None
    text: str | None
    remote: str | None = None

    def __str__(self) -> str:
        return " ".join(str(p) for p in (self.code, self.enhanced, self.text) if p is not None)

    @classmethod
    def from_json(cls, data: Json) -> SmtpReply:
        return cls(
            code=data.get("code"),
            enhanced=data.get("enhanced"),
            text=data.get("text"),
            remote=data.get("remote"),
        )


@dataclass(frozen=True, kw_only=True)
class DeliveryEvent:
    at: datetime
    type: str
    code: int | None
    enhanced: str | None
    text: str | None
    remote: str | None

    @classmethod
    def from_json(cls, data: Json) -> DeliveryEvent:
        return cls(
            at=_time(data["at"]),
            type=data["type"],
            code=data.get("code"),
            enhanced=data.get("enhanced"),
            text=data.get("text"),
            remote=data.get("remote"),
        )


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """One recipient of an outbound message and its state (queued, deferred, delivered...)."""

    id: str
    outbound_id: str
    recipient: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_response: SmtpReply | None
    created_at: datetime
    updated_at: datetime
    events: list[DeliveryEvent]
    data: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Json) -> Delivery:
        last = data.get("last_response")
        return cls(
            id=data["id"],
            outbound_id=data["outbound_id"],
            recipient=data["recipient"],
            state=data["state"],
            attempts=data.get("attempts", 0),
            next_attempt_at=parse_time(data.get("next_attempt_at")),
            last_response=SmtpReply.from_json(last) if last else None,
            created_at=_time(data["created_at"]),
            updated_at=_time(data["updated_at"]),
            events=[DeliveryEvent.from_json(e) for e in data.get("events") or []],
            data=data,
        )


@dataclass(frozen=True, kw_only=True)
class Outbound:
    """Sent mail: the answer to send()/release() and an entry of sent()/outbound()."""

    id: str
    message_id: str | None
    deliveries: list[Delivery]
    inbox_id: str | None = None
    subject: str | None = None
    mail_from: str | None = None
    recipients: list[str] = field(default_factory=list)
    created_at: datetime | None = None
    data: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Json) -> Outbound:
        return cls(
            id=data["id"],
            message_id=data.get("message_id"),
            deliveries=[Delivery.from_json(d) for d in data.get("deliveries") or []],
            inbox_id=data.get("inbox_id"),
            subject=data.get("subject"),
            mail_from=data.get("mail_from"),
            recipients=list(data.get("recipients") or []),
            created_at=parse_time(data.get("created_at")),
            data=data,
        )

    def delivery(self, recipient: str) -> Delivery:
        """This message's delivery to ``recipient``; ``NoMatch`` if it has none."""
        for d in self.deliveries:
            if d.recipient.lower() == recipient.lower():
                return d
        raise NoMatch(f"no delivery to {recipient!r}; recipients: {self.recipients}")


@dataclass(frozen=True, kw_only=True)
class Rule:
    """A fault rule and how often it has applied (``hits``)."""

    id: str
    stage: str
    match: dict[str, str]
    reply: SmtpReply | None
    action: str
    delay_ms: int
    times: int | None
    probability: float | None
    seed: int | None
    hits: int
    created_at: datetime
    data: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Json) -> Rule:
        reply = data.get("reply")
        return cls(
            id=data["id"],
            stage=data["stage"],
            match={k: v for k, v in (data.get("match") or {}).items() if v is not None},
            reply=SmtpReply.from_json(reply) if reply else None,
            action=data.get("action", "reply"),
            delay_ms=data.get("delay_ms", 0),
            times=data.get("times"),
            probability=data.get("probability"),
            seed=data.get("seed"),
            hits=data.get("hits", 0),
            created_at=_time(data["created_at"]),
            data=data,
        )


@dataclass(frozen=True, kw_only=True)
class SessionLine:
    ms: float
    dir: str
    text: str


@dataclass(frozen=True, kw_only=True)
class Session:
    """An SMTP session transcript (``lines`` is empty in list answers)."""

    id: str
    direction: str
    client_address: str | None
    server_address: str | None
    helo: str | None
    auth_user: str | None
    started_at: datetime
    ended_at: datetime
    submission_ids: list[str]
    inbox_ids: list[str]
    lines: list[SessionLine]
    data: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Json) -> Session:
        return cls(
            id=data["id"],
            direction=data["direction"],
            client_address=data.get("client_address"),
            server_address=data.get("server_address"),
            helo=data.get("helo"),
            auth_user=data.get("auth_user"),
            started_at=_time(data["started_at"]),
            ended_at=_time(data["ended_at"]),
            submission_ids=list(data.get("submission_ids") or []),
            inbox_ids=list(data.get("inbox_ids") or []),
            lines=[
                SessionLine(ms=ln["ms"], dir=ln["dir"], text=ln["text"])
                for ln in data.get("lines") or []
            ],
            data=data,
        )


@dataclass(frozen=True, kw_only=True)
class ApiKey:
    """An API key's record (never the key itself, except ``key`` right after creation)."""

    id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    key: str | None = field(default=None, repr=False)

    @classmethod
    def from_json(cls, data: Json) -> ApiKey:
        return cls(
            id=data["id"],
            name=data["name"],
            prefix=data.get("prefix", ""),
            created_at=_time(data["created_at"]),
            revoked_at=parse_time(data.get("revoked_at")),
            key=data.get("key"),
        )
