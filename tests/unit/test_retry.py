"""The pure retry policy: which state a reply leads to, backoff growth, cap, jitter,
the queue-lifetime deadline and determinism."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from app.delivery.reply import Reply
from app.delivery.retry import Decision, RetryPolicy, backoff, decide

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
OK = Reply.parse(250, "2.0.0 queued as 1234")
BOUNCE = Reply.parse(550, "5.1.1 no such user")
GREYLIST = Reply.parse(451, "4.7.1 greylisted, try again later")
NO_REPLY = Reply.no_reply("connection refused")
NO_JITTER = RetryPolicy(min_backoff=1.0, max_backoff=300.0, lifetime=3600.0, jitter=0.0)


def _decide(
    reply: Reply, *, policy: RetryPolicy = NO_JITTER, attempts: int = 1, after: float = 0.0
) -> Decision:
    return decide(
        policy,
        reply,
        attempts=attempts,
        queued_at=T0,
        now=T0 + timedelta(seconds=after),
        rng=random.Random(1),
    )


def test_success_is_delivered() -> None:
    assert _decide(OK) == Decision("delivered", None)
    assert _decide(Reply.parse(251, "2.1.5 will forward")) == Decision("delivered", None)


def test_permanent_failure_bounces_even_after_the_deadline() -> None:
    assert _decide(BOUNCE) == Decision("bounced", None)
    assert _decide(BOUNCE, after=99_999) == Decision("bounced", None)


def test_success_after_the_deadline_is_still_delivered() -> None:
    assert _decide(OK, after=99_999) == Decision("delivered", None)


@pytest.mark.parametrize("reply", [GREYLIST, NO_REPLY], ids=["4xx", "no-reply"])
def test_temporary_failure_is_deferred_by_the_backoff(reply: Reply) -> None:
    decision = _decide(reply, attempts=3, after=10)
    assert decision == Decision("deferred", T0 + timedelta(seconds=10 + 4))


def test_gaps_double_from_min_backoff() -> None:
    rng = random.Random(0)
    gaps = [backoff(NO_JITTER, n, rng) for n in range(1, 8)]
    assert gaps == [1, 2, 4, 8, 16, 32, 64]


def test_gaps_grow_within_jitter() -> None:
    policy = RetryPolicy(min_backoff=1.0, max_backoff=1000.0, jitter=0.1)
    rng = random.Random(42)
    for n in range(1, 10):
        nominal = 2.0 ** (n - 1)
        gap = backoff(policy, n, rng)
        assert nominal * 0.9 <= gap <= nominal * 1.1


def test_gap_is_capped_at_max_backoff() -> None:
    rng = random.Random(0)
    assert backoff(NO_JITTER, 9, rng) == 256
    assert backoff(NO_JITTER, 10, rng) == 300
    assert backoff(NO_JITTER, 50, rng) == 300
    assert backoff(NO_JITTER, 100_000, rng) == 300  # no float overflow


def test_jitter_bounds_over_many_seeds() -> None:
    policy = RetryPolicy(min_backoff=2.0, max_backoff=60.0, jitter=0.25)
    seen_low = seen_high = False
    for seed in range(500):
        rng = random.Random(seed)
        first = backoff(policy, 1, rng)
        assert policy.min_backoff * 0.75 <= first <= policy.min_backoff * 1.25
        capped = backoff(policy, 30, rng)
        assert policy.max_backoff * 0.75 <= capped <= policy.max_backoff
        middle = backoff(policy, 3, rng)  # nominal 8
        assert 6.0 <= middle <= 10.0
        seen_low |= middle < 7.0
        seen_high |= middle > 9.0
    assert seen_low and seen_high  # the jitter really spreads both ways


def test_same_seed_same_schedule() -> None:
    policy = RetryPolicy()

    def schedule(seed: int) -> list[float]:
        rng = random.Random(seed)
        return [backoff(policy, n, rng) for n in range(1, 12)]

    assert schedule(7) == schedule(7)
    assert schedule(7) != schedule(8)


def test_decide_is_deterministic_with_the_same_seed() -> None:
    policy = RetryPolicy(jitter=0.3)

    def run(seed: int) -> Decision:
        return decide(policy, GREYLIST, attempts=4, queued_at=T0, now=T0, rng=random.Random(seed))

    assert run(3) == run(3)


def test_next_attempt_is_clamped_to_the_deadline() -> None:
    policy = RetryPolicy(min_backoff=10.0, max_backoff=1000.0, lifetime=100.0, jitter=0.0)
    decision = _decide(GREYLIST, policy=policy, attempts=4, after=90)  # 90 + 80 > 100
    assert decision == Decision("deferred", T0 + timedelta(seconds=100))


def test_failure_exactly_at_the_deadline_expires() -> None:
    policy = RetryPolicy(lifetime=100.0, jitter=0.0)
    assert _decide(GREYLIST, policy=policy, after=100) == Decision("expired", None)
    assert _decide(NO_REPLY, policy=policy, after=250) == Decision("expired", None)
    just_before = _decide(GREYLIST, policy=policy, after=99.5)
    assert just_before == Decision("deferred", T0 + timedelta(seconds=100))


def test_a_schedule_ends_with_one_attempt_at_the_deadline() -> None:
    policy = RetryPolicy(min_backoff=1.0, max_backoff=300.0, lifetime=3600.0, jitter=0.1)
    rng = random.Random(99)
    deadline = T0 + timedelta(seconds=policy.lifetime)
    now, attempts, previous_gap = T0, 0, 0.0
    while True:
        attempts += 1
        decision = decide(policy, NO_REPLY, attempts=attempts, queued_at=T0, now=now, rng=rng)
        if decision.state == "expired":
            break
        assert decision.state == "deferred" and decision.next_attempt_at is not None
        assert decision.next_attempt_at <= deadline
        gap = (decision.next_attempt_at - now).total_seconds()
        if decision.next_attempt_at < deadline and attempts < 8:
            assert gap > previous_gap  # strictly growing while far from the cap
        previous_gap = gap
        now = decision.next_attempt_at
    assert now == deadline  # the last attempt happened exactly at the deadline
    assert 10 < attempts < 40


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_backoff": 0},
        {"min_backoff": 10, "max_backoff": 5},
        {"lifetime": -1},
        {"jitter": 1.0},
        {"jitter": -0.1},
    ],
)
def test_invalid_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


def test_attempts_must_be_positive() -> None:
    with pytest.raises(ValueError):
        backoff(RetryPolicy(), 0, random.Random(0))
