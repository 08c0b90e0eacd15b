"""Defaults shared by both clients and the pytest plugin."""

from __future__ import annotations

DEFAULT_URL = "http://127.0.0.1:8025"
DEFAULT_TIMEOUT = 30.0
"""Seconds for ordinary calls; waits add their own timeout plus a margin."""
USER_AGENT = "mailharness-client/0.1.0"


def auth_headers(key: str | None) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return headers
