"""Webhook payload formats: how an event's data becomes the JSON body of a POST.

``native`` (the default) posts the same JSON as the event stream's ``data``: a
MessageSummary for ``message.received``, a Delivery for ``delivery.updated``.
Compatibility layers register their own format (another product's payload
shape) with ``register``; a webhook names its format when it is created.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Formatter = Callable[[str, dict[str, Any], dict[str, Any]], dict[str, Any]]
"""(event type, event data, webhook info {"id", "inbox_id", "tenant_id"}) -> body."""

_FORMATS: dict[str, Formatter] = {}


def register(name: str, formatter: Formatter) -> None:
    _FORMATS[name] = formatter


def known(name: str) -> bool:
    return name in _FORMATS


def render(name: str, event: str, data: dict[str, Any], webhook: dict[str, Any]) -> dict[str, Any]:
    return _FORMATS.get(name, _native)(event, data, webhook)


def _native(event: str, data: dict[str, Any], webhook: dict[str, Any]) -> dict[str, Any]:
    del event, webhook
    return data


register("native", _native)
