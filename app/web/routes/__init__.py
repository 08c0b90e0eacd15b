"""The UI's pages, one module per area (inboxes, messages, sent mail, rules, status, login)."""

from __future__ import annotations
