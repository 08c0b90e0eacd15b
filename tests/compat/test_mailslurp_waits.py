"""Every MailSlurp wait-for operation through the official SDK against a real server:
mail already stored counts, mail arriving later wakes the wait (push), ``count`` is a
minimum, ``index`` is 0-based, match options and conditions filter, and a timeout is
HTTP 404 (``ApiException.status == 404``), also when the server's cap cuts a long one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import mailslurp_client as ms
import pytest

from tests.compat.mailslurp_support import Slurp, sdk, send_mail
from tests.support import Harness


@pytest.fixture
async def slurp(harness: Harness) -> AsyncIterator[Slurp]:
    client = sdk(harness.base_url)
    yield client
    await asyncio.to_thread(client.client.close)


async def _inbox(slurp: Slurp) -> ms.InboxDto:
    inbox: ms.InboxDto = await slurp.call(slurp.inboxes.create_inbox)
    return inbox


async def _times_out(slurp: Slurp, fn: Any, **kwargs: Any) -> ms.ApiException:
    with pytest.raises(ms.ApiException) as err:
        await slurp.call(fn, **kwargs)
    assert err.value.status == 404, err.value.body
    return err.value


async def test_wait_for_email_count_and_nth(harness: Harness, slurp: Slurp) -> None:
    inbox = await _inbox(slurp)
    for n in range(3):
        await send_mail(harness, inbox.email_address, subject=f"m{n}")
    # At least two: all three come back, in arrival order.
    found = await slurp.call(
        slurp.waits.wait_for_email_count, inbox_id=inbox.id, count=2, timeout=5000
    )
    assert [e.subject for e in found] == ["m0", "m1", "m2"]
    assert all(isinstance(e, ms.EmailPreview) for e in found)
    newest_first = await slurp.call(
        slurp.waits.wait_for_email_count, inbox_id=inbox.id, count=3, timeout=5000, sort="DESC"
    )
    assert [e.subject for e in newest_first] == ["m2", "m1", "m0"]

    second = await slurp.call(slurp.waits.wait_for_nth_email, inbox_id=inbox.id, index=1)
    assert second.subject == "m1" and second.read is True

    # The 5th (index 4) does not exist yet: the wait blocks until it arrives.
    waiting = asyncio.create_task(
        slurp.call(slurp.waits.wait_for_nth_email, inbox_id=inbox.id, index=4, timeout=10_000)
    )
    await harness.runtime.bus.until_subscribers(f"inbox:{inbox.id}", 1)
    await send_mail(harness, inbox.email_address, subject="m3")
    await send_mail(harness, inbox.email_address, subject="m4")
    assert (await waiting).subject == "m4"

    await _times_out(
        slurp, slurp.waits.wait_for_email_count, inbox_id=inbox.id, count=6, timeout=300
    )
    await _times_out(slurp, slurp.waits.wait_for_nth_email, inbox_id=inbox.id, index=5, timeout=300)


async def test_wait_for_latest_email(harness: Harness, slurp: Slurp) -> None:
    inbox = await _inbox(slurp)
    await _times_out(slurp, slurp.waits.wait_for_latest_email, inbox_id=inbox.id, timeout=300)
    await send_mail(harness, inbox.email_address, subject="first")
    await send_mail(harness, inbox.email_address, subject="second")
    latest = await slurp.call(slurp.waits.wait_for_latest_email, inbox_id=inbox.id, timeout=5000)
    assert latest.subject == "second"
    # Only "first" is still unread.
    unread = await slurp.call(
        slurp.waits.wait_for_latest_email, inbox_id=inbox.id, timeout=5000, unread_only=True
    )
    assert unread.subject == "first"
    await _times_out(
        slurp,
        slurp.waits.wait_for_latest_email,
        inbox_id=inbox.id,
        timeout=300,
        unread_only=True,
    )
    # ``before`` in the past hides everything; the legacy inbox read waits with minCount.
    await _times_out(
        slurp,
        slurp.waits.wait_for_latest_email,
        inbox_id=inbox.id,
        timeout=300,
        before=datetime.now(UTC) - timedelta(hours=1),
    )
    listed = await slurp.call(slurp.inboxes.get_emails, inbox.id, min_count=2, retry_timeout=5000)
    assert [e.subject for e in listed] == ["first", "second"]
    with pytest.raises(ms.ApiException) as err:
        await slurp.call(slurp.inboxes.get_emails, inbox.id, min_count=3, retry_timeout=200)
    assert err.value.status == 404
    got = await slurp.call(
        slurp.inboxes.get_latest_email_in_inbox, inbox_id=inbox.id, timeout_millis=1000
    )
    assert got.subject == "second"


async def test_matching_waits(harness: Harness, slurp: Slurp) -> None:
    inbox = await _inbox(slurp)
    addr = inbox.email_address
    await send_mail(harness, addr, subject="Welcome aboard", sender="hello@shop.example")
    await send_mail(
        harness,
        addr,
        subject="Your receipt #991",
        sender="billing@shop.example",
        extra_headers="Cc: Boss <boss@corp.example>\r\nX-Kind: receipt\r\n",
    )
    await send_mail(harness, addr, subject="Weekly news", sender="news@other.example")

    def opts(*matches: tuple[str, str, str]) -> ms.MatchOptions:
        return ms.MatchOptions(
            matches=[ms.MatchOption(field=f, should=s, value=v) for f, s, v in matches]
        )

    async def subjects(options: ms.MatchOptions, count: int = 1) -> list[str]:
        found = await slurp.call(
            slurp.waits.wait_for_matching_emails,
            inbox_id=inbox.id,
            count=count,
            timeout=5000,
            match_options=options,
        )
        return [e.subject for e in found]

    assert await subjects(opts(("SUBJECT", "CONTAIN", "receipt"))) == ["Your receipt #991"]
    assert await subjects(opts(("SUBJECT", "EQUAL", "weekly news"))) == ["Weekly news"]
    assert await subjects(opts(("SUBJECT", "MATCH", r"^W\w+ "))) == [
        "Welcome aboard",
        "Weekly news",
    ]
    assert await subjects(opts(("FROM", "CONTAIN", "@shop.example")), count=2) == [
        "Welcome aboard",
        "Your receipt #991",
    ]
    assert await subjects(opts(("FROM", "EQUAL", "news@other.example"))) == ["Weekly news"]
    assert await subjects(opts(("TO", "EQUAL", addr)), count=3) == [
        "Welcome aboard",
        "Your receipt #991",
        "Weekly news",
    ]
    assert await subjects(opts(("CC", "CONTAIN", "boss@"))) == ["Your receipt #991"]
    assert await subjects(opts(("HEADERS", "CONTAIN", "X-Kind: receipt"))) == ["Your receipt #991"]
    # Options apply together (AND).
    assert await subjects(
        opts(("FROM", "CONTAIN", "shop.example"), ("SUBJECT", "CONTAIN", "welcome"))
    ) == ["Welcome aboard"]
    # BCC: the envelope recipient that no header names.
    bcc_inbox = await _inbox(slurp)
    raw = b"From: a@example.com\r\nTo: someone@else.example\r\nSubject: hidden\r\n\r\nx\r\n"
    await harness.send("a@example.com", [bcc_inbox.email_address], raw)
    [hidden] = await slurp.call(
        slurp.waits.wait_for_matching_emails,
        inbox_id=bcc_inbox.id,
        count=1,
        timeout=5000,
        match_options=opts(("BCC", "EQUAL", bcc_inbox.email_address)),
    )
    assert hidden.subject == "hidden"

    first = await slurp.call(
        slurp.waits.wait_for_matching_first_email,
        inbox_id=inbox.id,
        timeout=5000,
        match_options=opts(("SUBJECT", "CONTAIN", "e")),
    )
    assert first.subject == "Welcome aboard" and isinstance(first, ms.Email)
    no_attachments = await slurp.call(
        slurp.waits.wait_for_matching_first_email,
        inbox_id=inbox.id,
        timeout=5000,
        match_options=ms.MatchOptions(
            conditions=[ms.ConditionOption(condition="HAS_ATTACHMENTS", value="FALSE")]
        ),
    )
    assert no_attachments.subject == "Welcome aboard"

    await _times_out(
        slurp,
        slurp.waits.wait_for_matching_emails,
        inbox_id=inbox.id,
        count=2,
        timeout=300,
        match_options=opts(("SUBJECT", "CONTAIN", "receipt")),
    )
    await _times_out(
        slurp,
        slurp.waits.wait_for_matching_first_email,
        inbox_id=inbox.id,
        timeout=300,
        match_options=ms.MatchOptions(
            conditions=[ms.ConditionOption(condition="HAS_ATTACHMENTS", value="TRUE")]
        ),
    )

    # A match arriving later wakes the wait.
    waiting = asyncio.create_task(subjects(opts(("SUBJECT", "CONTAIN", "late one"))))
    await harness.runtime.bus.until_subscribers(f"inbox:{inbox.id}", 1)
    await send_mail(harness, addr, subject="The late one")
    assert await waiting == ["The late one"]


async def test_wait_for_conditions(harness: Harness, slurp: Slurp) -> None:
    inbox = await _inbox(slurp)
    for subject in ("order 1", "order 2", "other"):
        await send_mail(harness, inbox.email_address, subject=subject)
    orders = [ms.MatchOption(field="SUBJECT", should="CONTAIN", value="order")]

    def conditions(**kw: Any) -> ms.WaitForConditions:
        return ms.WaitForConditions(inbox_id=inbox.id, timeout=5000, matches=orders, **kw)

    at_least = await slurp.call(
        slurp.waits.wait_for, conditions(count=1, count_type="ATLEAST", sort_direction="DESC")
    )
    assert [e.subject for e in at_least] == ["order 2", "order 1"]
    exactly = await slurp.call(slurp.waits.wait_for, conditions(count=2, count_type="EXACTLY"))
    assert [e.subject for e in exactly] == ["order 1", "order 2"]
    # EXACTLY 1 while 2 match, and 3 that never come: both 404.
    await _times_out(slurp, slurp.waits.wait_for, wait_for_conditions=conditions(count=1))
    await _times_out(
        slurp,
        slurp.waits.wait_for,
        wait_for_conditions=ms.WaitForConditions(
            inbox_id=inbox.id, timeout=300, count=3, matches=orders, count_type="ATLEAST"
        ),
    )
    unread = await slurp.call(
        slurp.waits.wait_for,
        ms.WaitForConditions(inbox_id=inbox.id, timeout=5000, count=3, unread_only=True),
    )
    assert len(unread) == 3


@pytest.mark.parametrize("settings_overrides", [{"wait_max_timeout": 0.5}])
async def test_server_caps_a_long_timeout(slurp: Slurp) -> None:
    inbox = await _inbox(slurp)
    started = time.monotonic()
    error = await _times_out(
        slurp, slurp.waits.wait_for_latest_email, inbox_id=inbox.id, timeout=600_000
    )
    assert time.monotonic() - started < 10
    assert "0 of 1" in error.body


async def test_unknown_inbox_and_missing_inbox_id(slurp: Slurp) -> None:
    with pytest.raises(ms.ApiException) as err:
        await slurp.call(
            slurp.waits.wait_for_latest_email,
            inbox_id="00000000-0000-4000-8000-000000000000",
            timeout=100,
        )
    assert err.value.status == 404
    with pytest.raises(ms.ApiException) as err:
        await slurp.call(slurp.waits.wait_for_latest_email, timeout=100)
    assert err.value.status == 400
