"""Mailpit's search string handed to our search (``q``), translating only the spelling
differences. The search service does the parsing and the matching."""

from __future__ import annotations


def to_query(search: str | None) -> str | None:
    """Our ``q`` for a Mailpit ``query``/``Search`` string (None or blank: everything)."""
    if search is None or not search.strip():
        return None
    return search.strip()
