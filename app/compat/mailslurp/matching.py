"""MailSlurp's match options as a ``MessageFilter`` the native ``WaitService`` applies.

``SlurpFilter`` extends the native filter (so waits stay the one native
implementation) with what MailSlurp adds: an upper ``before`` time, the
``MatchOption`` list (``field`` SUBJECT/TO/CC/BCC/FROM/HEADERS, ``should``
MATCH = regular expression searched in the value, CONTAIN = case-insensitive
substring, EQUAL = equal ignoring case and surrounding blanks), applied one after
another (all must hold; a list field holds when one of its entries does), and the
``HAS_ATTACHMENTS`` condition. HEADERS compares against each header as
``"Name: value"``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.compat.mailslurp.wire import ConditionOption, MatchOption
from app.errors import InvalidInput
from app.events.waiters import MessageFilter
from app.store.models import Message


@dataclass(frozen=True, slots=True)
class Matcher:
    field: str
    should: str
    value: str
    pattern: re.Pattern[str] | None

    @classmethod
    def of(cls, option: MatchOption) -> Matcher:
        pattern = None
        if option.should == "MATCH":
            try:
                pattern = re.compile(option.value, re.IGNORECASE)
            except re.error as exc:
                raise InvalidInput(f"matches: {option.value!r} is not a valid pattern") from exc
        return cls(option.field, option.should, option.value, pattern)

    def test(self, value: str | None) -> bool:
        if value is None:
            return False
        if self.pattern is not None:
            return self.pattern.search(value) is not None
        if self.should == "CONTAIN":
            return self.value.casefold() in value.casefold()
        return self.value.strip().casefold() == value.strip().casefold()

    def holds(self, m: Message) -> bool:
        return any(self.test(v) for v in _values(m, self.field))


def _addresses(people: list[dict[str, Any]]) -> list[str | None]:
    return [p.get("address") for p in people]


def _values(m: Message, field: str) -> list[str | None]:
    d = m.details
    if field == "SUBJECT":
        return [m.subject]
    if field == "FROM":
        return [m.from_address]
    if field == "TO":
        return _addresses(m.to)
    if field == "CC":
        return _addresses(d.get("cc", []))
    if field == "BCC":
        return _addresses(d.get("bcc", []))
    return [f"{h['name']}: {h['value']}" for h in d.get("headers", [])]


@dataclass(frozen=True, slots=True)
class SlurpFilter(MessageFilter):
    before: datetime | None = None
    matchers: tuple[Matcher, ...] = ()
    has_attachments: bool | None = None

    def matches(self, m: Message) -> bool:
        if not MessageFilter.matches(self, m):
            return False
        if self.before is not None and m.received_at >= self.before:
            return False
        if self.has_attachments is not None and bool(m.details.get("attachments")) != (
            self.has_attachments
        ):
            return False
        return all(matcher.holds(m) for matcher in self.matchers)


def slurp_filter(
    *,
    unread_only: bool | None,
    before: datetime | None,
    matches: Sequence[MatchOption] = (),
    conditions: Sequence[ConditionOption] = (),
) -> SlurpFilter:
    has_attachments = None
    for c in conditions:
        has_attachments = c.value == "TRUE"
    return SlurpFilter(
        seen=False if unread_only else None,
        before=before,
        matchers=tuple(Matcher.of(o) for o in matches),
        has_attachments=has_attachments,
    )
