"""The search language parser (app.search.query) and the indexed token text
(app.search.text): pure, no store."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from app.errors import InvalidQuery
from app.search.query import (
    MAX_TERMS,
    AddressTerm,
    Clause,
    FlagTerm,
    InboxTerm,
    MessageIdTerm,
    Query,
    ReceivedTerm,
    SizeTerm,
    WordsTerm,
    parse,
)
from app.search.text import address_entries, index_fields, tokens


def terms(q: str) -> list[Clause]:
    return list(parse(q).clauses)


def test_empty_and_blank_queries_are_empty() -> None:
    assert parse(None) == Query()
    assert parse("") == Query()
    assert parse("   \t ").empty


def test_plain_words_each_become_a_term() -> None:
    assert terms("Reset  PASSWORD") == [
        Clause(WordsTerm(("reset",))),
        Clause(WordsTerm(("password",))),
    ]


def test_a_word_with_punctuation_is_a_phrase_of_its_tokens() -> None:
    assert terms("news@example.com") == [Clause(WordsTerm(("news", "example", "com")))]
    assert terms("100%") == [Clause(WordsTerm(("100",)))]


def test_punctuation_only_word_has_no_tokens() -> None:
    assert terms("_") == [Clause(WordsTerm(()))]
    assert terms("-- -") == [Clause(WordsTerm((), "text"), negated=True), Clause(WordsTerm(()))]


def test_quoted_phrase_and_escapes() -> None:
    assert terms('"Reset your password"') == [Clause(WordsTerm(("reset", "your", "password")))]
    assert terms(r'"say \"hi\" now"') == [Clause(WordsTerm(("say", "hi", "now")))]
    # A quoted star is not a prefix.
    assert terms('"pass*"') == [Clause(WordsTerm(("pass",)))]


def test_prefix_word() -> None:
    assert terms("passw*") == [Clause(WordsTerm(("passw",), prefix=True))]
    assert terms("subject:inv*") == [Clause(WordsTerm(("inv",), "subject", prefix=True))]


def test_negation_forms() -> None:
    word = WordsTerm(("spam",))
    assert terms("-spam") == [Clause(word, negated=True)]
    assert terms("!spam") == [Clause(word, negated=True)]
    assert terms("NOT spam") == [Clause(word, negated=True)]
    assert terms("NOT -spam") == [Clause(word)]
    assert terms('-"big sale"') == [Clause(WordsTerm(("big", "sale")), negated=True)]
    # Lower-case "not" is a word; a trailing NOT is a word too.
    assert terms("not") == [Clause(WordsTerm(("not",)))]
    assert terms("spam NOT") == [Clause(word), Clause(WordsTerm(("not",)))]


def test_address_fields() -> None:
    assert terms("from:Jane.Doe@Example.COM") == [
        Clause(AddressTerm(("from",), "jane.doe@example.com", "exact"))
    ]
    assert terms("to:<a@x.test>") == [Clause(AddressTerm(("to",), "a@x.test", "exact"))]
    assert terms("-cc:@Corp.test") == [
        Clause(AddressTerm(("cc",), "corp.test", "domain"), negated=True)
    ]
    assert terms('bcc:"Jane Doe"') == [Clause(AddressTerm(("bcc",), "jane doe", "loose"))]
    assert terms("reply-to:help") == [Clause(AddressTerm(("reply_to",), "help", "loose"))]
    assert terms("FROM:x@y.test") == [Clause(AddressTerm(("from",), "x@y.test", "exact"))]
    [clause] = terms("addressed:x@y.test")
    assert isinstance(clause.term, AddressTerm)
    assert clause.term.kinds == ("from", "to", "cc", "bcc", "reply_to")


def test_subject_field() -> None:
    assert terms('subject:"Your Invoice"') == [Clause(WordsTerm(("your", "invoice"), "subject"))]
    assert terms("subject:invoice") == [Clause(WordsTerm(("invoice",), "subject"))]


def test_flags() -> None:
    assert terms("is:read is:SEEN is:unread is:unseen") == [
        Clause(FlagTerm("seen", True)),
        Clause(FlagTerm("seen", True)),
        Clause(FlagTerm("seen", False)),
        Clause(FlagTerm("seen", False)),
    ]
    assert terms("has:attachment -has:attachments") == [
        Clause(FlagTerm("attachments", True)),
        Clause(FlagTerm("attachments", True), negated=True),
    ]


def test_dates() -> None:
    assert terms("after:2026-11-28") == [
        Clause(ReceivedTerm(before=False, at=datetime(2026, 11, 28, tzinfo=UTC)))
    ]
    assert terms("before:2026/1/2") == [
        Clause(ReceivedTerm(before=True, at=datetime(2026, 1, 2, tzinfo=UTC)))
    ]
    [clause] = terms("after:2026-11-28T10:30:00.5+01:00")
    assert clause.term == ReceivedTerm(False, datetime(2026, 11, 28, 9, 30, 0, 500000, tzinfo=UTC))
    [clause] = terms("before:2026-11-28T10:30:00Z")
    assert clause.term == ReceivedTerm(True, datetime(2026, 11, 28, 10, 30, tzinfo=UTC))
    # Date-only and zone-less times are placed in the given zone.
    berlin = parse("after:2026-07-01 before:2026-07-01T12:00", tz=ZoneInfo("Europe/Berlin"))
    assert [c.term for c in berlin.clauses] == [
        ReceivedTerm(False, datetime(2026, 6, 30, 22, tzinfo=UTC)),
        ReceivedTerm(True, datetime(2026, 7, 1, 10, tzinfo=UTC)),
    ]


def test_sizes() -> None:
    assert terms("larger:2048 smaller:10k larger:2MB smaller:1.5m") == [
        Clause(SizeTerm(True, 2048)),
        Clause(SizeTerm(False, 10240)),
        Clause(SizeTerm(True, 2 * 1024 * 1024)),
        Clause(SizeTerm(False, int(1.5 * 1024 * 1024))),
    ]
    [clause] = terms("larger:" + "9" * 400)
    assert isinstance(clause.term, SizeTerm) and clause.term.bytes == 2**62


def test_message_id_and_inbox() -> None:
    assert terms("message-id:<Abc.1@Host>") == [Clause(MessageIdTerm("Abc.1@Host"))]
    assert terms("inbox:Reset@MailHarness.test") == [Clause(InboxTerm("reset@mailharness.test"))]


def test_unknown_fields_are_plain_words() -> None:
    assert terms("tag:urgent") == [Clause(WordsTerm(("tag", "urgent")))]
    assert terms("https://shop.example/reset?x=1") == [
        Clause(WordsTerm(("https", "shop", "example", "reset", "x", "1")))
    ]
    assert terms("10:30") == [Clause(WordsTerm(("10", "30")))]
    # A quote before the colon: not a field either.
    assert terms('"from":x') == [Clause(WordsTerm(("from", "x")))]


@pytest.mark.parametrize(
    ("q", "needle"),
    [
        ('"unterminated', "unterminated quote"),
        ('subject:"half', "unterminated quote"),
        ("after:yesterday", "after: expected a date"),
        ("before:2026-13-01", "before: expected a date"),
        ("after:0001-01-01T00:00:00+01:00", "after: expected a date"),
        ("is:starred", "is:starred is not supported"),
        ("has:inline", "has:inline is not supported"),
        ("larger:big", "larger: expected a size"),
        ("from:", "from: needs a value"),
        ('to:""', "to: needs a value"),
        ("cc:@", "is not a domain"),
        ("message-id:<>", "message-id: needs a value"),
        ("from:a\x00@b.test", "NUL character"),
        (" ".join(["w"] * (MAX_TERMS + 1)), "at most"),
    ],
)
def test_errors_are_invalid_query(q: str, needle: str) -> None:
    with pytest.raises(InvalidQuery) as err:
        parse(q)
    assert err.value.code == "invalid_query" and err.value.http_status == 400
    assert needle in err.value.detail


def test_tokens() -> None:
    assert tokens("Hello, WORLD! snake_case café 10am 2026-11-28") == [
        "hello",
        "world",
        "snake",
        "case",
        "café",
        "10am",
        "2026",
        "11",
        "28",
    ]
    assert tokens("a" * 101 + " b") == ["b"]
    assert tokens("STRASSE Straße") == ["strasse", "strasse"]


def test_index_fields_cover_subject_people_attachments_and_body() -> None:
    details = {
        "cc": [{"name": "Boss Person", "address": "boss@corp.test"}],
        "bcc": [{"name": None, "address": "hidden@mailharness.test"}],
        "reply_to": [{"name": None, "address": "help@shop.test"}],
        "envelope": {"mail_from": "bounce@shop.test", "rcpt_to": ["inbox@mailharness.test"]},
        "attachments": [{"filename": "Invoice-42.pdf"}],
        "text": None,
        "html": "<p>Pay <b>now</b></p><style>p{color:red}</style>",
    }
    subject, text = index_fields(
        subject="Your Invoice",
        from_name="Shop",
        from_address="orders@shop.test",
        to=[{"name": "Jane", "address": "jane@x.test"}],
        details=details,
    )
    assert subject == "your invoice"
    assert text == (
        "your invoice shop orders shop test jane jane x test boss person boss corp test "
        "hidden mailharness test help shop test bounce shop test inbox mailharness test "
        "invoice 42 pdf pay now"
    )
    # The text body wins over the HTML one.
    assert index_fields(
        subject=None, from_name=None, from_address=None, to=[], details={"text": "Hi", "html": "x"}
    ) == ("", "hi")


def test_address_entries_are_normalised_and_distinct() -> None:
    entries = address_entries(
        from_name="Jane Q. Doe",
        from_address="Jane@Example.COM",
        to=[{"name": None, "address": "a@x.test"}, {"name": "again", "address": "A@X.test"}],
        details={
            "cc": [{"name": None, "address": "undisclosed-recipients"}],
            "bcc": [{"name": None, "address": "a@x.test"}],
            "reply_to": [],
        },
    )
    assert [(e.kind, e.address, e.domain, e.name) for e in entries] == [
        ("from", "jane@example.com", "example.com", "jane q doe"),
        ("to", "a@x.test", "x.test", ""),
        ("cc", "undisclosed-recipients", "", ""),
        ("bcc", "a@x.test", "x.test", ""),
    ]


def test_index_fields_are_capped_below_postgres_position_limit() -> None:
    subject, text = index_fields(
        subject="s " * 400,
        from_name=None,
        from_address=None,
        to=[],
        details={"text": "w " * 17000},
    )
    assert len(subject.split()) == 300
    assert len(text.split()) == 16000
