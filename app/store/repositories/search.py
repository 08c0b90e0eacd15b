"""Compile a search ``Query`` (app.search.query) into SQL conditions on ``message``.

SUMMARY
    ``conditions(query, dialect=...)`` returns WHERE clauses for a ``select`` or
    ``delete`` of ``Message``; the caller adds the tenant scope and the order.

    Words and phrases use the full-text index. All positive word terms become one
    index lookup; each negated one a ``NOT IN`` lookup.
      SQLite   ``seq IN (SELECT rowid FROM message_fts WHERE message_fts MATCH
               'search_text : "reset your password" AND search_subject : "pass"*')``
      Postgres ``search_tsv @@ to_tsquery('simple', '''reset'':D <-> ...')``:
               the subject's tokens carry weight A, all tokens weight D, so a
               phrase never spans the subject and the rest.
    A word term without tokens matches nothing.

    Address terms look up ``message_address`` by its indexed ``address`` or
    ``domain`` (``seq IN (SELECT message_seq ...)``); a loose value (no ``@``)
    also compares the local part and the display-name tokens.
    Flags, dates, sizes, Message-ID and inbox are plain column comparisons.

    Tokens are runs of letters and digits (``app.search.text``), so they never
    hold a quote or an operator of either full-text syntax.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import (
    ColumnElement,
    and_,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    table,
    true,
)
from sqlalchemy.dialects.postgresql import REGCONFIG

from app.addresses import normalize_address
from app.search.query import (
    AddressTerm,
    Clause,
    FlagTerm,
    InboxTerm,
    MessageIdTerm,
    Query,
    ReceivedTerm,
    SizeTerm,
    Term,
    WordsTerm,
)
from app.search.text import tokens
from app.store.models import Inbox, Message, MessageAddress

_FTS = table("message_fts", literal_column("rowid"))


def conditions(query: Query, *, dialect: str) -> list[ColumnElement[bool]]:
    """WHERE clauses (all must hold) selecting the messages ``query`` matches."""
    found: list[ColumnElement[bool]] = []
    positive_words: list[WordsTerm] = []
    for clause in query.clauses:
        term = clause.term
        if isinstance(term, WordsTerm) and not term.tokens:
            found.append(true() if clause.negated else false())
        elif isinstance(term, WordsTerm) and not clause.negated:
            positive_words.append(term)
        elif isinstance(term, WordsTerm):
            found.append(not_(_words([term], dialect)))
        else:
            found.append(_negate(clause, _term(term)))
    if positive_words:
        found.append(_words(positive_words, dialect))
    return found


def _negate(clause: Clause, condition: ColumnElement[bool]) -> ColumnElement[bool]:
    return not_(condition) if clause.negated else condition


# -- full text ---------------------------------------------------------------------
def _words(terms: Sequence[WordsTerm], dialect: str) -> ColumnElement[bool]:
    if dialect == "sqlite":
        expression = " AND ".join(f"({_fts5(t)})" for t in terms)
        return Message.seq.in_(
            select(_FTS.c.rowid).where(literal_column("message_fts").op("MATCH")(expression))
        )
    expression = " & ".join(f"({_tsquery(t)})" for t in terms)
    tsquery = func.to_tsquery(literal("simple", REGCONFIG), expression)
    return literal_column("message.search_tsv").op("@@")(tsquery)


def _fts5(term: WordsTerm) -> str:
    column = "search_subject" if term.field == "subject" else "search_text"
    phrase = '"' + " ".join(term.tokens).replace('"', '""') + '"'
    return f"{column} : {phrase}{'*' if term.prefix else ''}"


def _tsquery(term: WordsTerm) -> str:
    weight = "A" if term.field == "subject" else "D"
    last = len(term.tokens) - 1
    return " <-> ".join(
        f"'{token}':{'*' if term.prefix and i == last else ''}{weight}"
        for i, token in enumerate(term.tokens)
    )


# -- everything else -------------------------------------------------------------------
def _term(term: Term) -> ColumnElement[bool]:
    if isinstance(term, AddressTerm):
        return _address(term)
    if isinstance(term, FlagTerm):
        column = Message.seen if term.flag == "seen" else Message.has_attachments
        return column.is_(True) if term.value else column.is_(False)
    if isinstance(term, ReceivedTerm):
        return Message.received_at < term.at if term.before else Message.received_at >= term.at
    if isinstance(term, SizeTerm):
        return Message.size > term.bytes if term.larger else Message.size < term.bytes
    if isinstance(term, MessageIdTerm):
        value = term.value.lower()
        stored = func.lower(func.coalesce(Message.message_id_header, ""))
        return stored.in_([value, f"<{value}>"])
    if isinstance(term, InboxTerm):
        return _inbox(term)
    raise TypeError(f"unknown search term {term!r}")  # pragma: no cover - exhaustive


def _address(term: AddressTerm) -> ColumnElement[bool]:
    a = MessageAddress
    if term.how == "exact":
        match: ColumnElement[bool] = a.address == term.value
    elif term.how == "domain":
        match = a.domain == term.value
    else:
        escaped = term.value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        name = " ".join(tokens(term.value))
        options: list[ColumnElement[bool]] = [
            a.domain == term.value,
            a.address.like(f"{escaped}@%", escape="\\"),
        ]
        if name:
            options.append((" " + a.name + " ").like(f"% {name} %"))
        match = or_(*options)
    kinds = a.kind == term.kinds[0] if len(term.kinds) == 1 else a.kind.in_(term.kinds)
    return Message.seq.in_(select(a.message_seq).where(and_(match, kinds)))


def _inbox(term: InboxTerm) -> ColumnElement[bool]:
    try:
        return Message.inbox_id == str(uuid.UUID(term.value))
    except ValueError:
        pass
    return Message.inbox_id.in_(
        select(Inbox.id).where(Inbox.address == normalize_address(term.value))
    )
