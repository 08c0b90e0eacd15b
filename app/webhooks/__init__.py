"""Webhooks: events out over HTTP, signed, queued in the store and retried with backoff."""

from __future__ import annotations
