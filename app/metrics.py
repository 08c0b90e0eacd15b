"""Prometheus metrics of one process (``GET /metrics``), names prefixed ``mailharness_``.

SUMMARY
    ``Metrics`` owns a private ``CollectorRegistry`` (no process-global state,
    so several runtimes in one process, as in tests, do not mix counts). The
    parts that do the work count into it: the SMTP edge (sessions accepted or
    refused, transactions accepted and replies rejected, by code), ingest
    (messages stored), waits (calls by kind and outcome, and their latency),
    the webhook dispatcher (attempts by outcome). Store-wide numbers
    (deliveries by state, queue depth, age of the oldest due delivery, webhook
    calls by state) are read from the store when scraped, so every process of
    a scaled-out deployment reports the same, correct totals.

INPUTS / OUTPUTS
    ``render(db)`` -> the text exposition format (bytes).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy import func, select

from app.errors import DeliveryStateConflict, MailArrived, WaitTimeout
from app.store.db import Database
from app.store.models import Delivery, WebhookCall
from app.store.types import utcnow

CONTENT_TYPE = CONTENT_TYPE_LATEST
DELIVERY_STATES = ("queued", "deferred", "delivered", "bounced", "expired", "held")
WEBHOOK_STATES = ("queued", "deferred", "delivered", "failed")
WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.smtp_sessions = Counter(
            "mailharness_smtp_sessions",
            "SMTP sessions by result (refused: a connection limit or a connect-stage rule).",
            ["result"],
            registry=r,
        )
        self.smtp_transactions = Counter(
            "mailharness_smtp_transactions",
            "SMTP transactions accepted (250 after DATA), and rejecting replies by code.",
            ["result", "code"],
            registry=r,
        )
        self.messages_stored = Counter(
            "mailharness_messages_stored", "Messages committed to the store.", registry=r
        )
        self.wait_calls = Counter(
            "mailharness_wait_calls",
            "Long-poll waits by kind (wait, quiet, delivery) and outcome.",
            ["kind", "outcome"],
            registry=r,
        )
        self.wait_seconds = Histogram(
            "mailharness_wait_seconds",
            "How long long-poll waits took, by kind and outcome.",
            ["kind", "outcome"],
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.webhook_attempts = Counter(
            "mailharness_webhook_attempts",
            "Webhook POSTs by outcome (success: a 2xx answer).",
            ["outcome"],
            registry=r,
        )
        self.deliveries = Gauge(
            "mailharness_deliveries", "Deliveries in the store by state.", ["state"], registry=r
        )
        self.queue_depth = Gauge(
            "mailharness_queue_depth",
            "Deliveries queued or deferred whose next attempt is due now.",
            registry=r,
        )
        self.queue_oldest_due = Gauge(
            "mailharness_queue_oldest_due_age_seconds",
            "How long the longest-waiting due delivery has been due (0 when none).",
            registry=r,
        )
        self.webhook_calls = Gauge(
            "mailharness_webhook_calls",
            "Webhook calls in the store by state.",
            ["state"],
            registry=r,
        )

    @contextlib.contextmanager
    def timed_wait(self, kind: str) -> Iterator[None]:
        """Count and time one wait: ``matched``, ``timeout``, ``conflict`` or ``error``."""
        started = time.monotonic()
        outcome = "matched"
        try:
            yield
        except WaitTimeout:
            outcome = "timeout"
            raise
        except (MailArrived, DeliveryStateConflict):
            outcome = "conflict"
            raise
        except BaseException:
            outcome = "error"
            raise
        finally:
            self.wait_calls.labels(kind, outcome).inc()
            self.wait_seconds.labels(kind, outcome).observe(time.monotonic() - started)

    async def render(self, db: Database) -> bytes:
        now = utcnow()
        async with db.read() as session:
            rows = await session.execute(
                select(Delivery.state, func.count()).group_by(Delivery.state)
            )
            by_state = {str(state): int(n) for state, n in rows.all()}
            due = (
                await session.execute(
                    select(func.count(), func.min(Delivery.next_attempt_at)).where(
                        Delivery.state.in_(("queued", "deferred")), Delivery.next_attempt_at <= now
                    )
                )
            ).one()
            rows = await session.execute(
                select(WebhookCall.state, func.count()).group_by(WebhookCall.state)
            )
            calls = {str(state): int(n) for state, n in rows.all()}
        for state in DELIVERY_STATES:
            self.deliveries.labels(state).set(by_state.get(state, 0))
        self.queue_depth.set(due[0] or 0)
        self.queue_oldest_due.set(max(0.0, (now - due[1]).total_seconds()) if due[1] else 0.0)
        for state in WEBHOOK_STATES:
            self.webhook_calls.labels(state).set(calls.get(state, 0))
        return generate_latest(self.registry)
