"""Events: the in-process bus that wakes waiters (and, later, SSE and webhooks)."""

from __future__ import annotations
