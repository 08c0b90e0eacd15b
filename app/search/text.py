"""Search text: what the full-text indexes and the address index see. Pure, no I/O.

SUMMARY
    Both stores index the same token text, computed here once per stored message
    (at ingest, or by the backfill migration) from the fields ingest already parsed:
    ``tokens`` case-folds and keeps each run of letters and digits (no
    underscores), so ``news@example.com`` is ``news example com`` and ``100%`` is
    ``100``. Tokens are joined by single spaces, so SQLite FTS5 (``unicode61``,
    diacritics kept) and Postgres (``to_tsvector('simple', ...)``) split them
    identically and phrases are adjacent tokens in both.

    ``index_fields`` gives ``(subject tokens, all tokens)``: the second holds the
    subject, sender/recipient names and addresses (From, To, Cc, Bcc, Reply-To,
    envelope), attachment filenames and the first ``BODY_LIMIT`` characters of the
    text body (else the visible text of the HTML body), at most ``MAX_TOKENS``.

    ``address_entries`` gives one ``AddressEntry`` per distinct (kind, address)
    of From, To, Cc, Bcc (which includes envelope-only recipients) and Reply-To,
    normalised like inbox addresses (``app.addresses``), with the domain and the display name's tokens, for the exact
    ``from:``/``to:``/... lookups.

INPUTS
    The stored message's fields: subject, from name/address, ``to`` and the
    ``details`` JSON (``cc``, ``bcc``, ``reply_to``, ``text``, ``html``,
    ``attachments``, ``envelope``) as ingest writes them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.addresses import normalize_address
from app.mail.extract import html_to_text

__all__ = [
    "ADDRESS_KINDS",
    "AddressEntry",
    "address_entries",
    "index_fields",
    "tokens",
]

_TOKEN_RE = re.compile(r"[^\W_]+")
# Longer runs (base64, hashes) are not words anyone searches for; Postgres would
# drop words over 2047 characters anyway, so both stores skip them alike.
MAX_TOKEN_LENGTH = 100
# Characters of body text that are indexed (as the previous search column did).
BODY_LIMIT = 32 * 1024
# HTML is reduced to text only up to this many characters of markup.
HTML_LIMIT = 256 * 1024
# Postgres records word positions up to 16383 (larger ones collapse, which would
# break phrases); the subject's tokens come first, so both together stay below.
MAX_SUBJECT_TOKENS = 300
MAX_TOKENS = 16000
ADDRESS_KINDS = ("from", "to", "cc", "bcc", "reply_to")


def tokens(text: str) -> list[str]:
    """The searchable tokens of ``text``: case-folded runs of letters and digits
    (``Straße`` is ``strasse``)."""
    return [t for t in _TOKEN_RE.findall(text.casefold()) if len(t) <= MAX_TOKEN_LENGTH]


def _joined(text: str) -> str:
    return " ".join(tokens(text))


def _body(details: Mapping[str, Any]) -> str:
    text = details.get("text")
    if isinstance(text, str) and text:
        return text[:BODY_LIMIT]
    html = details.get("html")
    if isinstance(html, str) and html:
        return html_to_text(html[:HTML_LIMIT])[:BODY_LIMIT]
    return ""


def _people(items: Any) -> list[tuple[str, str]]:
    """(name, address) pairs of a stored address list (``[{"name", "address"}]``)."""
    pairs: list[tuple[str, str]] = []
    if isinstance(items, list):
        for item in items:
            if isinstance(item, Mapping):
                pairs.append((str(item.get("name") or ""), str(item.get("address") or "")))
    return pairs


def index_fields(
    *,
    subject: str | None,
    from_name: str | None,
    from_address: str | None,
    to: Sequence[Any],
    details: Mapping[str, Any],
) -> tuple[str, str]:
    """``(subject tokens, all tokens)`` of one stored message, each space-joined."""
    parts: list[str] = [subject or "", from_name or "", from_address or ""]
    people = _people(list(to))
    for key in ("cc", "bcc", "reply_to"):
        people += _people(details.get(key))
    for name, address in people:
        parts += (name, address)
    envelope = details.get("envelope")
    if isinstance(envelope, Mapping):
        parts.append(str(envelope.get("mail_from") or ""))
        rcpts = envelope.get("rcpt_to")
        if isinstance(rcpts, list):
            parts.extend(str(r) for r in rcpts)
    attachments = details.get("attachments")
    if isinstance(attachments, list):
        parts.extend(str(a.get("filename") or "") for a in attachments if isinstance(a, Mapping))
    parts.append(_body(details))
    subject_tokens = tokens(subject or "")[:MAX_SUBJECT_TOKENS]
    all_tokens = [t for p in parts for t in tokens(p)][:MAX_TOKENS]
    return " ".join(subject_tokens), " ".join(all_tokens)


@dataclass(frozen=True, slots=True)
class AddressEntry:
    kind: str  # one of ADDRESS_KINDS
    address: str  # lowercase
    domain: str  # lowercase, "" when the address has no "@"
    name: str  # the display name's tokens, space-joined


def _entry(kind: str, name: str | None, address: str | None) -> AddressEntry | None:
    normalized = normalize_address(address or "")
    if not normalized:
        return None
    _, at, domain = normalized.rpartition("@")
    return AddressEntry(kind, normalized, domain if at else "", _joined(name or ""))


def address_entries(
    *,
    from_name: str | None,
    from_address: str | None,
    to: Sequence[Any],
    details: Mapping[str, Any],
) -> list[AddressEntry]:
    """One entry per distinct (kind, address) of the message, in header order."""
    found: list[AddressEntry | None] = [_entry("from", from_name, from_address)]
    lists: Iterable[tuple[str, Any]] = (
        ("to", list(to)),
        ("cc", details.get("cc")),
        ("bcc", details.get("bcc")),
        ("reply_to", details.get("reply_to")),
    )
    for kind, items in lists:
        found.extend(_entry(kind, name, address) for name, address in _people(items))
    seen: set[tuple[str, str]] = set()
    entries: list[AddressEntry] = []
    for entry in found:
        if entry is None or (entry.kind, entry.address) in seen:
            continue
        seen.add((entry.kind, entry.address))
        entries.append(entry)
    return entries
