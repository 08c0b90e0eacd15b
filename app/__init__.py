"""Mailharness: a self-hosted email test harness.

SMTP intake and the REST send path feed one ingest funnel into the store; the
REST API serves inboxes, messages and push-based waits on top of it.
"""

from __future__ import annotations

__version__ = "0.1.0"
