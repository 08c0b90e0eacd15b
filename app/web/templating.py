"""The Jinja2 environment of the web UI and the small formatting filters its templates use."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.templating import Jinja2Templates

from app import __version__
from app.api.schemas.common import format_time
from app.api.schemas.messages import AddressOut

TEMPLATES_DIR = Path(__file__).parent / "templates"
UI = "/ui"


def human_size(n: int | None) -> str:
    """``1536`` -> ``1.5 KB``."""
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KB", "MB"):
        if size < 1024 or unit == "MB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} MB"  # pragma: no cover - the loop always returns


def utc_text(value: datetime | None) -> str:
    """A readable UTC time (the browser replaces it with local and relative time)."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(value: datetime | None) -> str:
    return format_time(value) if value is not None else ""


def address(value: AddressOut | None) -> str:
    if value is None:
        return ""
    if value.name:
        return f"{value.name} <{value.address}>"
    return value.address


def sender(value: AddressOut | None) -> str:
    """The sender's name, else the address (list rows)."""
    if value is None:
        return "(no sender)"
    return value.name or value.address or "(no sender)"


def addresses(values: list[AddressOut]) -> str:
    return ", ".join(address(v) for v in values)


def build_templates() -> Jinja2Templates:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        size=human_size, utc=utc_text, iso=iso, address=address, addresses=addresses, sender=sender
    )
    env.globals.update(ui=UI, version=__version__)
    return Jinja2Templates(env=env)
