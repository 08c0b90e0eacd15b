"""Where a recipient's mail goes, and which received mail is relayed onward.

``Router.route(address)``: harness domains -> ``local`` (into their inbox
through the ingest funnel); everything else -> ``relay`` (smarthost), ``mx``
(the domain's MX) or ``held`` (relay off, the default: nothing leaves).

``RelayMatch`` decides which recipients of mail received over SMTP are also
queued for delivery onward: a comma-separated list of case-insensitive globs
(``*@customer.example, ops-*@*``) or, prefixed with ``re:``, one regular
expression matched against the whole address.

CONFIGURATION PARAMETERS
    domains, relay_mode, relay_url, relay_match.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from typing import Literal

RelayMode = Literal["off", "smarthost", "mx"]
Route = Literal["local", "relay", "mx", "held"]


class Router:
    def __init__(self, *, domains: Sequence[str], mode: RelayMode) -> None:
        self.domains = frozenset(d.lower() for d in domains)
        self.mode = mode

    def is_local(self, address: str) -> bool:
        return address.rpartition("@")[2].lower() in self.domains

    def route(self, address: str) -> Route:
        if self.is_local(address):
            return "local"
        if self.mode == "smarthost":
            return "relay"
        if self.mode == "mx":
            return "mx"
        return "held"


class RelayMatch:
    def __init__(self, spec: str | None) -> None:
        self.spec = (spec or "").strip()
        self._regex: re.Pattern[str] | None = None
        self._globs: list[str] = []
        if self.spec.startswith("re:"):
            self._regex = re.compile(self.spec[3:], re.IGNORECASE)
        elif self.spec:
            self._globs = [g.strip().lower() for g in self.spec.split(",") if g.strip()]

    def __bool__(self) -> bool:
        return bool(self._regex or self._globs)

    def matches(self, address: str) -> bool:
        if self._regex is not None:
            return self._regex.fullmatch(address) is not None
        lowered = address.lower()
        return any(fnmatch.fnmatchcase(lowered, g) for g in self._globs)
