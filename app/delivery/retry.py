"""The retry policy (Postfix's qmgr backoff and ``maximal_queue_lifetime``), pure.

``decide`` turns one delivery attempt's ``Reply`` into the recipient's next
state: 2xx -> delivered, 5xx -> bounced, anything else (4xx or no reply at
all) -> deferred with an exponential, jittered backoff, or expired once the
queue lifetime has run out. The last retry is clamped to the deadline, so
mail always gets one final attempt at ``queued_at + lifetime``; a temporary
failure at or after the deadline expires.

No I/O and no clock reads: the caller passes ``now`` and a ``random.Random``
(seed it in tests for determinism).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from app.delivery.reply import Reply

State = Literal["delivered", "deferred", "bounced", "expired"]

# 2.0 ** 1024 overflows a float; any exponent this large is capped anyway.
_MAX_EXPONENT = 1023


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    min_backoff: float = 1.0  # seconds, the gap after the first failed attempt
    max_backoff: float = 300.0  # seconds, the cap on any gap
    lifetime: float = 3600.0  # seconds from first queueing until temporary failures expire
    jitter: float = 0.1  # +/- fraction applied to each gap

    def __post_init__(self) -> None:
        if not self.min_backoff > 0:
            raise ValueError("min_backoff must be > 0")
        if not self.max_backoff >= self.min_backoff:
            raise ValueError("max_backoff must be >= min_backoff")
        if not self.lifetime >= 0:
            raise ValueError("lifetime must be >= 0")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")


@dataclass(frozen=True, slots=True)
class Decision:
    state: State
    next_attempt_at: datetime | None  # set only when state == "deferred"


def backoff(policy: RetryPolicy, attempts: int, rng: random.Random) -> float:
    """Seconds to wait after ``attempts`` failed attempts (>= 1).

    ``min_backoff * 2**(attempts-1)`` capped at ``max_backoff``, then scaled by
    a random factor in ``[1 - jitter, 1 + jitter]`` and clamped to
    ``[min_backoff * (1 - jitter), max_backoff]``.
    """
    if attempts < 1:
        raise ValueError("attempts must be >= 1")
    exponent = attempts - 1
    if exponent > _MAX_EXPONENT:
        base = policy.max_backoff
    else:
        base = min(policy.max_backoff, policy.min_backoff * 2.0**exponent)
    jittered = base * (1.0 + rng.uniform(-policy.jitter, policy.jitter))
    floor = policy.min_backoff * (1.0 - policy.jitter)
    return min(policy.max_backoff, max(floor, jittered))


def decide(
    policy: RetryPolicy,
    reply: Reply,
    *,
    attempts: int,
    queued_at: datetime,
    now: datetime,
    rng: random.Random,
) -> Decision:
    """The next state after attempt number ``attempts`` (counting this one) got ``reply``."""
    if reply.success:
        return Decision("delivered", None)
    if reply.permanent:
        return Decision("bounced", None)
    deadline = queued_at + timedelta(seconds=policy.lifetime)
    if now >= deadline:
        return Decision("expired", None)
    next_at = now + timedelta(seconds=backoff(policy, attempts, rng))
    return Decision("deferred", min(next_at, deadline))
