"""MailSlurp sent emails and delivery statuses for mail relayed to a real remote MTA:
``PUBLIC_EMAIL`` transport, the remote's reply as ``smtpStatusCode``/``smtpResponse``,
its address as ``remoteMtaIp``, one status per recipient (``index``), bounces too."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import mailslurp_client as ms
import pytest

from tests.compat.mailslurp_support import Slurp, sdk
from tests.support import Harness, RemoteServer, start_remote


@pytest.fixture
async def remote() -> AsyncIterator[RemoteServer]:
    server = await start_remote()
    yield server
    server.server.close()


@pytest.fixture
def settings_overrides(remote: RemoteServer) -> dict[str, Any]:
    return {"relay_url": f"smtp://127.0.0.1:{remote.port}", "relay_timeout": 5.0}


@pytest.fixture
async def slurp(harness: Harness) -> AsyncIterator[Slurp]:
    client = sdk(harness.base_url)
    yield client
    await asyncio.to_thread(client.client.close)


async def test_relayed_delivery_statuses(remote: RemoteServer, slurp: Slurp) -> None:
    remote.handler.rcpt_replies["nobody@example.com"] = ["550 5.1.1 No such user here"]
    inbox = await slurp.call(slurp.inboxes.create_inbox)
    sent = await slurp.call(
        slurp.inboxes.send_email_and_confirm,
        inbox.id,
        ms.SendEmailOptions(
            to=["customer@example.com"], bcc=["nobody@example.com"], subject="Hi", body="x"
        ),
    )
    assert sent.transport == "PUBLIC_EMAIL"
    assert sent.to == ["customer@example.com"] and sent.bcc == ["nobody@example.com"]

    first = await slurp.call(
        slurp.sent.wait_for_delivery_statuses, sent_id=sent.id, index=0, timeout=10_000
    )
    second = await slurp.call(
        slurp.sent.wait_for_delivery_statuses, sent_id=sent.id, index=1, timeout=10_000
    )
    by_rcpt = {s.recipients[0]: s for s in (first, second)}
    ok, bounced = by_rcpt["customer@example.com"], by_rcpt["nobody@example.com"]
    assert ok.smtp_status_code == 250 and ok.smtp_response == "250 2.0.0 Ok: remote accepted"
    assert ok.remote_mta_ip == "127.0.0.1" and ok.received is not None
    assert bounced.smtp_status_code == 550 and bounced.received is None
    assert bounced.smtp_response == "550 5.1.1 No such user here"
    assert ok.inbox_id == inbox.id and ok.subject == "Hi"

    page = await slurp.call(slurp.inboxes.get_delivery_statuses_by_inbox_id, inbox.id)
    assert page.total_elements == 2
    everything = await slurp.call(slurp.sent.get_sent_delivery_statuses)
    assert {s.id for s in everything.content} == {ok.id, bounced.id}
    [got] = remote.handler.received
    assert got.rcpt_tos == ["customer@example.com"]
    raw = await slurp.call(slurp.sent.get_raw_sent_email_json, sent.id)
    assert raw.content.encode() == got.content
    count = await slurp.call(slurp.inboxes.get_inbox_sent_count, inbox.id)
    assert count.total_elements == 1

    with pytest.raises(ms.ApiException) as err:
        await slurp.call(
            slurp.sent.wait_for_delivery_statuses, sent_id=sent.id, index=2, timeout=100
        )
    assert err.value.status == 404
    with pytest.raises(ms.ApiException) as err:
        await slurp.call(
            slurp.sent.wait_for_delivery_statuses, inbox_id=inbox.id, index=2, timeout=200
        )
    assert err.value.status == 404
