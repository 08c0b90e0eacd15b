"""Request bodies read like Mailpit (Go ``encoding/json``): field names match
case-insensitively, so ``{"ids": ...}`` is ``{"IDs": ...}``.

``read_body`` accepts a JSON object or, for the PyPI client which sends
``ids=a&ids=b&Read=True`` form-encoded, ``application/x-www-form-urlencoded``.
An empty body is ``None`` (each route decides what that means; never "all");
a body that cannot be read is a ``BadRequest``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from fastapi import Request

from app.compat.mailpit.errors import BadRequest

MAX_BODY = 64 * 1024 * 1024
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


class Fields:
    """Case-insensitive, typed access to one JSON object (or a form)."""

    def __init__(self, data: Mapping[str, Any], where: str = "") -> None:
        self.data = data
        self.where = where

    def _name(self, name: str) -> str:
        return f"{self.where}{name}"

    def get(self, name: str) -> Any:
        """The value of the last key equal to ``name`` ignoring case (None if absent)."""
        wanted = name.lower()
        found = None
        for key, value in self.data.items():
            if key.lower() == wanted:
                found = value
        return found

    def has(self, name: str) -> bool:
        wanted = name.lower()
        return any(key.lower() == wanted for key in self.data)

    def text(self, name: str, default: str = "") -> str:
        value = self.get(name)
        if isinstance(value, list) and len(value) == 1:  # a form field
            value = value[0]
        if value is None:
            return default
        if not isinstance(value, str):
            raise BadRequest(f"{self._name(name)}: expected a string")
        return value

    def texts(self, name: str) -> list[str] | None:
        """A list of strings (a lone string counts as one); None when absent or null."""
        value = self.get(name)
        if value is None:
            return None
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise BadRequest(f"{self._name(name)}: expected a list of strings")
        return list(value)

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.get(name)
        if isinstance(value, list) and len(value) == 1:  # a form field
            value = value[0]
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise BadRequest(f"{self._name(name)}: expected true or false")

    def number(self, name: str, default: int = 0) -> int:
        value = self.get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise BadRequest(f"{self._name(name)}: expected a whole number")
        return int(value)

    def obj(self, name: str) -> Fields | None:
        value = self.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise BadRequest(f"{self._name(name)}: expected an object")
        return Fields(value, f"{self._name(name)}.")

    def objs(self, name: str) -> list[Fields]:
        value = self.get(name)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise BadRequest(f"{self._name(name)}: expected a list of objects")
        return [Fields(v, f"{self._name(name)}[{i}].") for i, v in enumerate(value)]

    def mapping(self, name: str) -> dict[str, str]:
        """A JSON object of strings whose own keys keep their case (e.g. headers)."""
        value = self.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise BadRequest(f"{self._name(name)}: expected an object of strings")
        return dict(value)


async def read_body(request: Request) -> Fields | None:
    """The request's JSON object or form; None when the body is empty."""
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise BadRequest("the request body is too large")
    if not raw.strip():
        return None
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        try:
            form = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            raise BadRequest("the form body cannot be read") from None
        return Fields(form)
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("the request body must be a JSON object")
    return Fields(data)
