"""An SMTP reply as the delivery layer sees it: code, RFC 3463 enhanced code, text, remote.

``code`` is None when there was no reply at all (connection refused, timeout,
connection dropped): the retry policy treats that like a 4xx.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?:\s+|$)")


@dataclass(frozen=True, slots=True)
class Reply:
    code: int | None
    enhanced: str | None
    text: str
    remote: str | None = None

    @classmethod
    def parse(cls, code: int | None, message: str, remote: str | None = None) -> Reply:
        """Split ``"4.7.1 Try again later"`` into enhanced code and text."""
        message = " ".join(message.split())  # multi-line replies become one line
        match = _ENHANCED.match(message)
        if match:
            return cls(code, ".".join(match.groups()), message[match.end() :].strip(), remote)
        return cls(code, None, message, remote)

    @classmethod
    def no_reply(cls, reason: str, remote: str | None = None) -> Reply:
        return cls(None, None, reason, remote)

    @property
    def success(self) -> bool:
        return self.code is not None and 200 <= self.code < 300

    @property
    def permanent(self) -> bool:
        return self.code is not None and 500 <= self.code < 600

    @property
    def temporary(self) -> bool:
        return not self.success and not self.permanent

    def as_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "enhanced": self.enhanced,
            "text": self.text,
            "remote": self.remote,
        }
