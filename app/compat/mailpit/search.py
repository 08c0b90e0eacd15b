"""Mailpit's search string handed to our search service (``q``), translating only what
differs; the search service (``app.search``) parses and matches.

Both languages share the terms (words, ``"phrases"``, ``from:`` ``to:`` ``cc:``
``bcc:`` ``reply-to:`` ``addressed:`` ``subject:`` ``message-id:`` ``is:read``
``is:unread`` ``has:attachment(s)`` ``before:`` ``after:`` ``larger:`` ``smaller:``,
``-``/``!`` negation). The difference is matching: Mailpit matches words as
substrings, ours as whole words, so a bare word and an unquoted ``subject:``
word become prefixes (``Welc`` -> ``Welc*``, which finds "Welcome"), the closest
our index offers. Mailpit's ``tag:``, ``is:tagged`` and ``has:inline`` have no
equivalent (there is no tag store) and are answered 400 by the search service.
"""

from __future__ import annotations

import re

# One term: optional negation, optional ``field:``, then a quoted or plain value.
_TERM = re.compile(
    r'(?P<neg>[-!]?)(?P<field>[A-Za-z][A-Za-z-]*:)?(?P<value>"(?:[^"\\]|\\.)*"?|\S+)'
)
_PREFIXED = ("", "subject:")


def _prefix(match: re.Match[str]) -> str:
    neg, field, value = match.group("neg"), match.group("field") or "", match.group("value")
    if field.lower() not in _PREFIXED or value.startswith('"') or value.endswith("*"):
        return match.group(0)
    if not any(ch.isalnum() for ch in value[-1:]):
        return match.group(0)  # "word." stays a word: a prefix needs a word character last
    return f"{neg}{field}{value}*"


def to_query(search: str | None) -> str | None:
    """Our ``q`` for a Mailpit ``query``/``Search`` string (None or blank: everything)."""
    if search is None or not search.strip():
        return None
    return _TERM.sub(_prefix, search.strip())
