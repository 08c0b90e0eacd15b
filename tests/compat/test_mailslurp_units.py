"""Pure pieces of the MailSlurp adapter: match options on stored rows, Spring page
arithmetic, the timestamp format the SDK parses as aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from app.compat.mailslurp import wire
from app.compat.mailslurp.matching import slurp_filter
from app.errors import InvalidInput
from app.store.models import Message

NOW = datetime(2026, 11, 28, 17, 5, 29, 123456, tzinfo=UTC)


def _message(**details: Any) -> Message:
    return Message(
        seq=1,
        subject="Your receipt #991",
        from_address="billing@shop.example",
        from_name="Shop",
        to=[{"name": None, "address": "me@mailharness.test"}],
        received_at=NOW,
        seen=False,
        details={
            "cc": [{"name": "Boss", "address": "boss@corp.example"}],
            "bcc": [{"name": None, "address": "hidden@mailharness.test"}],
            "headers": [{"name": "X-Kind", "value": "receipt"}],
            "attachments": [],
            **details,
        },
    )


def _opt(field: str, should: str, value: str) -> wire.MatchOption:
    return wire.MatchOption(field=field, should=should, value=value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "should", "value", "expected"),
    [
        ("SUBJECT", "CONTAIN", "RECEIPT", True),
        ("SUBJECT", "EQUAL", " your receipt #991 ", True),
        ("SUBJECT", "EQUAL", "receipt", False),
        ("SUBJECT", "MATCH", r"#\d{3}$", True),
        ("SUBJECT", "MATCH", r"^receipt", False),
        ("FROM", "EQUAL", "BILLING@shop.example", True),
        ("FROM", "CONTAIN", "Shop <", False),
        ("TO", "EQUAL", "me@mailharness.test", True),
        ("CC", "CONTAIN", "boss@", True),
        ("CC", "EQUAL", "me@mailharness.test", False),
        ("BCC", "EQUAL", "hidden@mailharness.test", True),
        ("HEADERS", "CONTAIN", "x-kind: rec", True),
        ("HEADERS", "EQUAL", "X-Kind: receipt", True),
        ("HEADERS", "CONTAIN", "X-Other", False),
    ],
)
def test_match_options(field: str, should: str, value: str, expected: bool) -> None:
    flt = slurp_filter(unread_only=False, before=None, matches=[_opt(field, should, value)])
    assert flt.matches(_message()) is expected


def test_options_are_anded_and_conditions_and_flags_apply() -> None:
    m = _message()
    both = [_opt("SUBJECT", "CONTAIN", "receipt"), _opt("FROM", "CONTAIN", "shop")]
    assert slurp_filter(unread_only=False, before=None, matches=both).matches(m)
    one_fails = [*both, _opt("TO", "EQUAL", "other@x.example")]
    assert not slurp_filter(unread_only=False, before=None, matches=one_fails).matches(m)

    has = [wire.ConditionOption(condition="HAS_ATTACHMENTS", value="TRUE")]
    hasnt = [wire.ConditionOption(condition="HAS_ATTACHMENTS", value="FALSE")]
    assert not slurp_filter(unread_only=False, before=None, conditions=has).matches(m)
    assert slurp_filter(unread_only=False, before=None, conditions=hasnt).matches(m)
    with_file = _message(attachments=[{"id": "a"}])
    assert slurp_filter(unread_only=False, before=None, conditions=has).matches(with_file)

    assert slurp_filter(unread_only=False, before=NOW + timedelta(seconds=1)).matches(m)
    assert not slurp_filter(unread_only=False, before=NOW).matches(m)
    assert slurp_filter(unread_only=True, before=None).matches(m)
    m.seen = True
    assert not slurp_filter(unread_only=True, before=None).matches(m)


def test_bad_pattern_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        slurp_filter(unread_only=False, before=None, matches=[_opt("SUBJECT", "MATCH", "(")])


def test_page_envelope() -> None:
    page = wire.page_of(["c"], page=1, size=2, total=3).model_dump(by_alias=True)
    assert page["totalPages"] == 2 and page["totalElements"] == 3
    assert page["number"] == 1 and page["numberOfElements"] == 1
    assert page["first"] is False and page["last"] is True and page["empty"] is False
    assert page["pageable"]["offset"] == 2 and page["pageable"]["pageSize"] == 2
    empty = wire.page_of([], page=0, size=20, total=0).model_dump(by_alias=True)
    assert empty["totalPages"] == 0 and empty["empty"] is True and empty["first"] is True


def test_times_are_utc_milliseconds_with_z() -> None:
    assert wire.format_ms(NOW) == "2026-11-28T17:05:29.123Z"
    plus_one = NOW.astimezone(timezone(timedelta(hours=1)))
    assert wire.format_ms(plus_one) == "2026-11-28T17:05:29.123Z"
