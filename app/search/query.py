"""The message search language: ``parse(q)`` turns a query string into a typed AST.

Pure, no I/O. The store compiles the AST to SQL (``app.store.repositories.search``).

SYNTAX
    Whitespace-separated terms, all of which must match (AND). ``"double quotes"``
    group words into a phrase (``\\"`` and ``\\\\`` escape inside quotes). A term
    prefixed with ``-`` or ``!``, or preceded by the word ``NOT`` (upper case),
    is negated. Field names are case-insensitive.

    word, "a phrase"      the words (adjacent, in order, for a phrase) anywhere in
                          subject, names, addresses, attachment names or text body;
                          ``word*`` matches words starting with ``word``; a word of
                          only punctuation matches nothing
    subject:WORD          ... in the subject only (``subject:"a phrase"``, ``subject:pass*``)
    from: to: cc: bcc: reply-to: addressed: (any of those)
                          ``x@y`` the exact address (case-insensitive, never a
                          substring); ``@y`` any address at domain y; a value without
                          ``@`` matches the local part or the domain exactly, or
                          words of the display name (``from:"Jane Doe"``)
    is:read is:seen / is:unread is:unseen
    has:attachment has:attachments
    after:T before:T      received at or after T / strictly before T; T is
                          YYYY-MM-DD (or YYYY/MM/DD; midnight in ``tz``, default UTC)
                          or an RFC 3339 / ISO 8601 time (no zone: ``tz``)
    larger:N smaller:N    size in bytes strictly above / below N (``10k``, ``2MB``,
                          ``1.5m``: k = 1024)
    message-id:ID         the Message-ID header, with or without ``<>``,
                          case-insensitive
    inbox:ID|ADDRESS      one inbox of the caller's, by id or by address

    Any other ``name:value`` is a plain word (so a URL or ``10:30`` just works).
    A known field with a value it cannot use (``is:starred``, ``after:yesterday``),
    an empty value (``from:``), an unterminated quote or a NUL character raises
    ``InvalidQuery``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo
from typing import Literal

from app.addresses import normalize_address
from app.errors import InvalidQuery
from app.search.text import tokens

__all__ = [
    "AddressTerm",
    "Clause",
    "FlagTerm",
    "InboxTerm",
    "MessageIdTerm",
    "Query",
    "ReceivedTerm",
    "SizeTerm",
    "Term",
    "WordsTerm",
    "parse",
]

MAX_TERMS = 64
MAX_SIZE = 2**62  # larger sizes are clamped (they still fit a BIGINT)
ADDRESS_FIELDS: dict[str, tuple[str, ...]] = {
    "from": ("from",),
    "to": ("to",),
    "cc": ("cc",),
    "bcc": ("bcc",),
    "reply-to": ("reply_to",),
    "replyto": ("reply_to",),
    "addressed": ("from", "to", "cc", "bcc", "reply_to"),
}
_FIELD_RE = re.compile(r"[a-z][a-z-]*")
_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmg]?)b?", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_DATE_RE = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})")


@dataclass(frozen=True, slots=True)
class WordsTerm:
    """Tokens that must appear in order, adjacent (one token: just that word).
    No tokens (the term was only punctuation) matches nothing."""

    tokens: tuple[str, ...]
    field: Literal["text", "subject"] = "text"
    prefix: bool = False  # the last token is a prefix


@dataclass(frozen=True, slots=True)
class AddressTerm:
    """An address of one of ``kinds``: the exact address, any at a domain, or (loose)
    a local part / domain equal to ``value`` or a display name containing its words."""

    kinds: tuple[str, ...]
    value: str
    how: Literal["exact", "domain", "loose"]


@dataclass(frozen=True, slots=True)
class FlagTerm:
    flag: Literal["seen", "attachments"]
    value: bool


@dataclass(frozen=True, slots=True)
class ReceivedTerm:
    """``received_at >= at`` (after) or ``received_at < at`` (before)."""

    before: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class SizeTerm:
    """``size > bytes`` (larger) or ``size < bytes`` (smaller)."""

    larger: bool
    bytes: int


@dataclass(frozen=True, slots=True)
class MessageIdTerm:
    value: str  # without angle brackets


@dataclass(frozen=True, slots=True)
class InboxTerm:
    value: str  # an inbox id or address, lowercase


Term = WordsTerm | AddressTerm | FlagTerm | ReceivedTerm | SizeTerm | MessageIdTerm | InboxTerm


@dataclass(frozen=True, slots=True)
class Clause:
    term: Term
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Query:
    clauses: tuple[Clause, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.clauses


@dataclass(frozen=True, slots=True)
class _Lexeme:
    negated: bool
    field: str | None  # lowercased field name, when the term is ``name:value``
    value: str  # the value (after ``name:``), quotes removed
    quoted: bool
    text: str  # the whole term as written, quotes removed, negation prefix removed


def _lex(q: str) -> Iterator[_Lexeme]:
    i, n = 0, len(q)
    while i < n:
        if q[i].isspace():
            i += 1
            continue
        negated = False
        if q[i] in "-!" and i + 1 < n and not q[i + 1].isspace():
            negated = True
            i += 1
        chars: list[str] = []
        field: str | None = None
        field_at = 0
        quoted = False
        while i < n and not q[i].isspace():
            ch = q[i]
            if ch == '"':
                quoted = True
                i += 1
                while True:
                    if i >= n:
                        raise InvalidQuery(f"unterminated quote in the query: {q!r}")
                    ch = q[i]
                    if ch == "\\" and i + 1 < n and q[i + 1] in '"\\':
                        chars.append(q[i + 1])
                        i += 2
                        continue
                    i += 1
                    if ch == '"':
                        break
                    chars.append(ch)
                continue
            if ch == ":" and field is None and not quoted:
                name = "".join(chars).lower()
                if _FIELD_RE.fullmatch(name):
                    field, field_at = name, len(chars) + 1
            chars.append(ch)
            i += 1
        text = "".join(chars)
        yield _Lexeme(negated, field, text[field_at:] if field else text, quoted, text)


def parse(q: str | None, *, tz: tzinfo = UTC) -> Query:
    """The AST of ``q`` (None or blank: the empty query, which matches everything).

    ``tz`` places date-only (and zone-less) ``before:``/``after:`` values."""
    if q and "\x00" in q:  # no store can compare text holding NUL (Postgres refuses it)
        raise InvalidQuery("the query contains a NUL character")
    clauses: list[Clause] = []
    negate_next = False
    lexemes = list(_lex(q or ""))
    for index, lex in enumerate(lexemes):
        if lex.text == "NOT" and not lex.quoted and not lex.negated and index + 1 < len(lexemes):
            negate_next = not negate_next
            continue
        term = _term(lex, tz)
        clauses.append(Clause(term, negated=lex.negated != negate_next))
        negate_next = False
    if len(clauses) > MAX_TERMS:
        raise InvalidQuery(f"the query has {len(clauses)} terms; at most {MAX_TERMS} are allowed")
    return Query(tuple(clauses))


def _words(value: str, *, quoted: bool, field: Literal["text", "subject"]) -> WordsTerm:
    prefix = not quoted and value.endswith("*")
    found = tokens(value)
    return WordsTerm(tuple(found), field=field, prefix=prefix and bool(found))


def _term(lex: _Lexeme, tz: tzinfo) -> Term:
    field = lex.field
    if field is None or field not in _FIELDS:
        return _words(lex.text, quoted=lex.quoted, field="text")
    value = lex.value.strip()
    if not value:
        raise InvalidQuery(f"{field}: needs a value")
    if field in ADDRESS_FIELDS:
        return _address(ADDRESS_FIELDS[field], value)
    if field == "subject":
        return _words(value, quoted=lex.quoted, field="subject")
    if field == "is":
        flag = value.lower()
        if flag in ("read", "seen"):
            return FlagTerm("seen", True)
        if flag in ("unread", "unseen"):
            return FlagTerm("seen", False)
        raise InvalidQuery(f"is:{value} is not supported (use is:read or is:unread)")
    if field == "has":
        if value.lower() in ("attachment", "attachments"):
            return FlagTerm("attachments", True)
        raise InvalidQuery(f"has:{value} is not supported (use has:attachment)")
    if field in ("before", "after"):
        return ReceivedTerm(before=field == "before", at=_when(field, value, tz))
    if field in ("larger", "smaller"):
        return SizeTerm(larger=field == "larger", bytes=_size(field, value))
    if field == "message-id":
        message_id = value.strip("<>").strip()
        if not message_id:
            raise InvalidQuery("message-id: needs a value")
        return MessageIdTerm(message_id)
    return InboxTerm(value.lower())


_FIELDS = frozenset(
    {*ADDRESS_FIELDS, "subject", "is", "has", "before", "after", "larger", "smaller"}
    | {"message-id", "inbox"}
)


def _address(kinds: tuple[str, ...], value: str) -> AddressTerm:
    address = normalize_address(value)
    if address.startswith("@"):
        domain = address[1:]
        if not domain or "@" in domain:
            raise InvalidQuery(f"{value!r} is not a domain (use @example.com)")
        return AddressTerm(kinds, domain, "domain")
    if "@" in address:
        return AddressTerm(kinds, address, "exact")
    return AddressTerm(kinds, address, "loose")


def _when(field: str, value: str, tz: tzinfo) -> datetime:
    day = _DATE_RE.fullmatch(value)
    try:
        if day:
            y, m, d = (int(g) for g in day.groups())
            parsed = datetime.combine(date(y, m, d), time())
        else:
            parsed = datetime.fromisoformat(value.replace(" ", "T"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=tz)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidQuery(
            f"{field}: expected a date (YYYY-MM-DD) or an RFC 3339 time, got {value!r}"
        ) from None


def _size(field: str, value: str) -> int:
    match = _SIZE_RE.fullmatch(value)
    if match is None:
        raise InvalidQuery(f"{field}: expected a size like 2048, 10k or 2MB, got {value!r}")
    try:
        size = int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])
    except OverflowError:
        size = MAX_SIZE
    return min(size, MAX_SIZE)
