"""The request/response layer both clients share (sans I/O).

Every API operation is written once here as a generator: it yields a ``Request``,
receives the ``httpx.Response`` for it, maps errors to the exception tree, and
returns a typed result (an operation may make a second request, as
``wait_for_delivery`` does to attach the delivery to a 409). ``Mailharness`` and
``AsyncMailharness`` only drive these generators with a sync or an async
``httpx`` client, so the two cannot drift apart.

Long-poll operations (waits, quiet, delivery waits) set their own HTTP timeout:
the server-side timeout plus ``WAIT_MARGIN`` seconds, so the server always
answers (200, 408 or 409) before the client gives up.
"""

from __future__ import annotations

import base64
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TypedDict, TypeVar
from urllib.parse import quote

import httpx

from mailharness._errors import (
    ApiError,
    AuthError,
    Conflict,
    DeliveryStateConflict,
    NotFound,
    QuietViolation,
    WaitTimeout,
)
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

T = TypeVar("T")
WAIT_MARGIN = 10.0
DEFAULT_WAIT = 30.0
Params = list[tuple[str, str]]
DeliveryState = Literal["queued", "deferred", "delivered", "bounced", "expired", "held", "final"]
Stage = Literal["connect", "mail", "rcpt", "data"]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    params: Params | None = None
    json: Any = None
    timeout: float | None = None  # None: the client's default


Op = Generator[Request, httpx.Response, T]


class HasId(Protocol):
    @property
    def id(self) -> str: ...


Ref = str | HasId
"""An object or its id: ``Inbox``/``BoundInbox``/``Message``/... or the id string."""


def ref_id(ref: Ref) -> str:
    return ref if isinstance(ref, str) else ref.id


def _seg(ref: Ref) -> str:
    return quote(ref_id(ref), safe="")


class Filters(TypedDict, total=False):
    """What ``wait_for``/``quiet`` match on; each text is a case-insensitive substring."""

    subject: str
    from_: str
    to: str
    body: str
    header: str | Sequence[str] | Mapping[str, str]  # "Name: value" or {"Name": "value"}
    seen: bool
    since: str | datetime | MessageSummary  # an RFC 3339 time or a message (id)


def format_time(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("since must be timezone-aware (e.g. datetime.now(UTC))")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def filter_params(filters: Filters) -> Params:
    params: Params = []
    for key in ("subject", "from_", "to", "body"):
        value = filters.get(key)
        if value is not None:
            params.append((key.rstrip("_"), str(value)))
    header = filters.get("header")
    if isinstance(header, str):
        params.append(("header", header))
    elif isinstance(header, Mapping):
        params.extend(("header", f"{k}: {v}") for k, v in header.items())
    elif header is not None:
        params.extend(("header", h) for h in header)
    if (seen := filters.get("seen")) is not None:
        params.append(("seen", "true" if seen else "false"))
    since = filters.get("since")
    if isinstance(since, datetime):
        params.append(("since", format_time(since)))
    elif isinstance(since, MessageSummary):
        params.append(("since", since.id))
    elif since is not None:
        params.append(("since", since))
    return params


def _query(**values: Any) -> Params:
    return [(k, str(v)) for k, v in values.items() if v is not None]


def _error_body(resp: httpx.Response) -> tuple[str, str, dict[str, Any]]:
    try:
        body = resp.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return "error", resp.text[:500] or resp.reason_phrase, {}
    return str(body.get("error", "error")), str(body.get("detail", "")), body


def api_error(resp: httpx.Response) -> ApiError:
    error, detail, _ = _error_body(resp)
    kind = {401: AuthError, 404: NotFound, 409: Conflict}.get(resp.status_code, ApiError)
    return kind(resp.status_code, error, detail)


def expect(resp: httpx.Response, status: int) -> Any:
    """The JSON body of an answer with ``status``; raises the fitting ApiError otherwise."""
    if resp.status_code != status:
        raise api_error(resp)
    return resp.json() if resp.content else None


# ---- inboxes -------------------------------------------------------------------------


def create_inbox(
    address: str | None, name: str | None, tags: Sequence[str] | None, expires_in: int | None
) -> Op[Inbox]:
    body: dict[str, Any] = {"address": address, "name": name, "expires_in": expires_in}
    body = {k: v for k, v in body.items() if v is not None}
    if tags:
        body["tags"] = list(tags)
    resp = yield Request("POST", "/api/v1/inboxes", json=body)
    return Inbox.from_json(expect(resp, 201))


def get_inbox(inbox: Ref) -> Op[Inbox]:
    resp = yield Request("GET", f"/api/v1/inboxes/{_seg(inbox)}")
    return Inbox.from_json(expect(resp, 200))


def list_inboxes(tag: str | None, limit: int | None, cursor: str | None) -> Op[Page[Inbox]]:
    resp = yield Request("GET", "/api/v1/inboxes", _query(tag=tag, limit=limit, cursor=cursor))
    return Page.parse(expect(resp, 200), Inbox.from_json)


def delete(path: str) -> Op[None]:
    resp = yield Request("DELETE", path)
    expect(resp, 204)


def delete_inbox(inbox: Ref) -> Op[None]:
    return delete(f"/api/v1/inboxes/{_seg(inbox)}")


def empty_inbox(inbox: Ref) -> Op[None]:
    return delete(f"/api/v1/inboxes/{_seg(inbox)}/messages")


# ---- messages ------------------------------------------------------------------------


def list_messages(
    inbox: Ref, since: str | None, seen: bool | None, limit: int | None, cursor: str | None
) -> Op[Page[MessageSummary]]:
    params = _query(since=since, limit=limit, cursor=cursor)
    if seen is not None:
        params.append(("seen", "true" if seen else "false"))
    resp = yield Request("GET", f"/api/v1/inboxes/{_seg(inbox)}/messages", params)
    return Page.parse(expect(resp, 200), MessageSummary.from_json)


def search(
    q: str | None,
    inbox: Ref | None,
    submission_id: str | None,
    limit: int | None,
    cursor: str | None,
) -> Op[Page[MessageSummary]]:
    params = _query(
        q=q,
        inbox_id=ref_id(inbox) if inbox is not None else None,
        submission_id=submission_id,
        limit=limit,
        cursor=cursor,
    )
    resp = yield Request("GET", "/api/v1/messages", params)
    return Page.parse(expect(resp, 200), MessageSummary.from_json)


def get_message(message: Ref) -> Op[Message]:
    resp = yield Request("GET", f"/api/v1/messages/{_seg(message)}")
    return Message.from_json(expect(resp, 200))


def raw(message: Ref) -> Op[bytes]:
    resp = yield Request("GET", f"/api/v1/messages/{_seg(message)}/raw")
    if resp.status_code != 200:
        raise api_error(resp)
    return resp.content


def attachment(att: Attachment) -> Op[bytes]:
    path = f"/api/v1/messages/{_seg(att.message_id)}/attachments/{_seg(att.id)}"
    resp = yield Request("GET", path)
    if resp.status_code != 200:
        raise api_error(resp)
    return resp.content


def mark_seen(message: Ref, seen: bool) -> Op[Message]:
    resp = yield Request("PATCH", f"/api/v1/messages/{_seg(message)}", json={"seen": seen})
    return Message.from_json(expect(resp, 200))


def delete_message(message: Ref) -> Op[None]:
    return delete(f"/api/v1/messages/{_seg(message)}")


# ---- waits ---------------------------------------------------------------------------


def _address(inbox: Ref) -> str | None:
    address = getattr(inbox, "address", None)
    return address if isinstance(address, str) else None


def wait_for(inbox: Ref, filters: Filters, count: int, timeout: float) -> Op[list[Message]]:
    params = [*filter_params(filters), ("count", str(count)), ("timeout", f"{timeout:g}")]
    path = f"/api/v1/inboxes/{_seg(inbox)}/wait"
    resp = yield Request("GET", path, params, timeout=timeout + WAIT_MARGIN)
    if resp.status_code == 408:
        raise WaitTimeout(
            _error_body(resp)[1],
            inbox_id=ref_id(inbox),
            address=_address(inbox),
            filters=dict(filters),
            count=count,
            timeout=timeout,
        )
    return [Message.from_json(m) for m in expect(resp, 200)["items"]]


def quiet(inbox: Ref, filters: Filters, timeout: float) -> Op[None]:
    params = [*filter_params(filters), ("timeout", f"{timeout:g}")]
    path = f"/api/v1/inboxes/{_seg(inbox)}/quiet"
    resp = yield Request("GET", path, params, timeout=timeout + WAIT_MARGIN)
    if resp.status_code == 409:
        _, detail, body = _error_body(resp)
        messages = [Message.from_json(m) for m in body.get("items", [])]
        raise QuietViolation(detail, inbox_id=ref_id(inbox), messages=messages)
    expect(resp, 200)


# ---- sending and deliveries ----------------------------------------------------------


def send(
    inbox: Ref,
    *,
    to: Sequence[str],
    subject: str,
    text: str | None,
    html: str | None,
    cc: Sequence[str] | None,
    bcc: Sequence[str] | None,
    reply_to: str | Sequence[str] | None,
    headers: Mapping[str, str] | None,
    attachments: Sequence[tuple[str, str, bytes]] | None,
) -> Op[Outbound]:
    body: dict[str, Any] = {"to": list(to), "subject": subject}
    if text is not None:
        body["text"] = text
    if html is not None:
        body["html"] = html
    if cc:
        body["cc"] = list(cc)
    if bcc:
        body["bcc"] = list(bcc)
    if reply_to is not None:
        body["reply_to"] = reply_to if isinstance(reply_to, str) else list(reply_to)
    if headers:
        body["headers"] = dict(headers)
    if attachments:
        body["attachments"] = [
            {
                "filename": filename,
                "content_type": content_type,
                "content_base64": base64.b64encode(data).decode(),
            }
            for filename, content_type, data in attachments
        ]
    resp = yield Request("POST", f"/api/v1/inboxes/{_seg(inbox)}/send", json=body)
    return Outbound.from_json(expect(resp, 202))


def list_sent(inbox: Ref, limit: int | None, cursor: str | None) -> Op[Page[Outbound]]:
    path = f"/api/v1/inboxes/{_seg(inbox)}/sent"
    resp = yield Request("GET", path, _query(limit=limit, cursor=cursor))
    return Page.parse(expect(resp, 200), Outbound.from_json)


def release(message: Ref, to: Sequence[str]) -> Op[Outbound]:
    path = f"/api/v1/messages/{_seg(message)}/release"
    resp = yield Request("POST", path, json={"to": list(to)})
    return Outbound.from_json(expect(resp, 202))


def get_outbound(outbound: Ref) -> Op[Outbound]:
    resp = yield Request("GET", f"/api/v1/outbound/{_seg(outbound)}")
    return Outbound.from_json(expect(resp, 200))


def list_deliveries(
    inbox: Ref | None,
    state: str | None,
    recipient: str | None,
    limit: int | None,
    cursor: str | None,
) -> Op[Page[Delivery]]:
    params = _query(
        inbox_id=ref_id(inbox) if inbox is not None else None,
        state=state,
        recipient=recipient,
        limit=limit,
        cursor=cursor,
    )
    resp = yield Request("GET", "/api/v1/deliveries", params)
    return Page.parse(expect(resp, 200), Delivery.from_json)


def get_delivery(delivery: Ref) -> Op[Delivery]:
    resp = yield Request("GET", f"/api/v1/deliveries/{_seg(delivery)}")
    return Delivery.from_json(expect(resp, 200))


def wait_for_delivery(delivery: Ref, state: DeliveryState, timeout: float) -> Op[Delivery]:
    path = f"/api/v1/deliveries/{_seg(delivery)}/wait"
    params = [("state", state), ("timeout", f"{timeout:g}")]
    resp = yield Request("GET", path, params, timeout=timeout + WAIT_MARGIN)
    if resp.status_code == 408:
        raise WaitTimeout(
            _error_body(resp)[1],
            inbox_id="",
            address=None,
            filters={"delivery": ref_id(delivery), "state": state},
            count=1,
            timeout=timeout,
        )
    if resp.status_code == 409:
        detail = _error_body(resp)[1]
        current = yield Request("GET", f"/api/v1/deliveries/{_seg(delivery)}")
        found = Delivery.from_json(current.json()) if current.status_code == 200 else None
        raise DeliveryStateConflict(
            detail, delivery_id=ref_id(delivery), wanted=state, delivery=found
        )
    return Delivery.from_json(expect(resp, 200))


# ---- fault rules, sessions, keys, health ---------------------------------------------


def create_rule(body: dict[str, Any]) -> Op[Rule]:
    resp = yield Request("POST", "/api/v1/rules", json=body)
    return Rule.from_json(expect(resp, 201))


def list_rules() -> Op[list[Rule]]:
    resp = yield Request("GET", "/api/v1/rules")
    return [Rule.from_json(r) for r in expect(resp, 200)["items"]]


def get_rule(rule: Ref) -> Op[Rule]:
    resp = yield Request("GET", f"/api/v1/rules/{_seg(rule)}")
    return Rule.from_json(expect(resp, 200))


def delete_rule(rule: Ref) -> Op[None]:
    return delete(f"/api/v1/rules/{_seg(rule)}")


def list_sessions(
    inbox: Ref | None, direction: str | None, limit: int | None, cursor: str | None
) -> Op[Page[Session]]:
    params = _query(
        inbox_id=ref_id(inbox) if inbox is not None else None,
        direction=direction,
        limit=limit,
        cursor=cursor,
    )
    resp = yield Request("GET", "/api/v1/sessions", params)
    return Page.parse(expect(resp, 200), Session.from_json)


def get_session(session: Ref) -> Op[Session]:
    resp = yield Request("GET", f"/api/v1/sessions/{_seg(session)}")
    return Session.from_json(expect(resp, 200))


def create_key(name: str) -> Op[ApiKey]:
    resp = yield Request("POST", "/api/v1/keys", json={"name": name})
    return ApiKey.from_json(expect(resp, 201))


def list_keys() -> Op[list[ApiKey]]:
    resp = yield Request("GET", "/api/v1/keys")
    return [ApiKey.from_json(k) for k in expect(resp, 200)["items"]]


def revoke_key(name_or_id: str) -> Op[None]:
    return delete(f"/api/v1/keys/{quote(name_or_id, safe='')}")


def ready() -> Op[bool]:
    resp = yield Request("GET", "/readyz")
    return resp.status_code == 200


class RuleSpec(TypedDict, total=False):
    """A fault rule besides its stage: the reply (``code``, ``enhanced``, ``text``) or
    ``action="disconnect"``, what it matches, and when it applies."""

    code: int
    enhanced: str
    text: str
    action: Literal["reply", "disconnect"]
    recipient: str  # glob
    sender: str  # glob
    inbox: Ref
    delay_ms: int
    times: int
    probability: float
    seed: int


def rule_body(stage: Stage, spec: RuleSpec) -> dict[str, Any]:
    match: dict[str, str] = {}
    for key in ("recipient", "sender"):
        if (value := spec.get(key)) is not None:
            match[key] = str(value)
    if (inbox := spec.get("inbox")) is not None:
        match["inbox_id"] = ref_id(inbox)
    body: dict[str, Any] = {"stage": stage, "match": match}
    if "code" in spec:
        body["reply"] = {
            "code": spec["code"],
            "enhanced": spec.get("enhanced"),
            "text": spec.get("text"),
        }
    for key in ("action", "delay_ms", "times", "probability", "seed"):
        if (value := spec.get(key)) is not None:
            body[key] = value
    return body
