"""MailSlurp per-inbox webhooks through the official SDK: a native webhook (signed,
queued, retried) that POSTs MailSlurp's new-email payload, which the SDK's own
``WebhookNewEmailPayload`` model accepts; basic auth; list, get, delete; scoping."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator

import mailslurp_client as ms
import pytest

from app.store.models import Webhook
from app.webhooks.signing import verify
from tests.compat.mailslurp_support import Slurp, sdk, send_mail
from tests.support import Harness, WebhookReceiver


@pytest.fixture
async def slurp(harness: Harness) -> AsyncIterator[Slurp]:
    client = sdk(harness.base_url)
    yield client
    await asyncio.to_thread(client.client.close)


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    r = await WebhookReceiver().start()
    yield r
    await r.stop()


async def test_new_email_webhook_posts_mailslurp_payload(
    harness: Harness, slurp: Slurp, receiver: WebhookReceiver
) -> None:
    inbox = await slurp.call(slurp.inboxes.create_inbox)
    other = await slurp.call(slurp.inboxes.create_inbox)
    hook = await slurp.call(
        slurp.webhooks.create_webhook,
        inbox.id,
        ms.CreateWebhookOptions(url=receiver.url, name="on-mail"),
    )
    assert isinstance(hook, ms.WebhookDto)
    assert hook.inbox_id == inbox.id and hook.event_name == "EMAIL_RECEIVED"
    assert hook.url == receiver.url and hook.basic_auth is False and hook.method == "POST"

    await send_mail(harness, other.email_address, subject="not this inbox")
    await send_mail(harness, inbox.email_address, subject="Welcome", sender="hi@shop.example")
    post = await receiver.next()
    payload = json.loads(post.body)
    # The SDK's own model of the payload accepts it (required fields, enum).
    client = ms.ApiClient()
    try:
        parsed = client._ApiClient__deserialize(payload, "WebhookNewEmailPayload")
    finally:
        client.close()
    assert parsed.event_name == "EMAIL_RECEIVED" and parsed.webhook_id == hook.id
    assert parsed.inbox_id == inbox.id and parsed.subject == "Welcome"
    assert parsed._from == "hi@shop.example" and parsed.to == [inbox.email_address]
    assert parsed.created_at.tzinfo is not None
    email = await slurp.call(slurp.emails.get_email, parsed.email_id)
    assert email.subject == "Welcome"
    # Signed like every native webhook; one POST only (the other inbox's mail is not sent).
    await harness.runtime.webhook_dispatcher.until_recorded(1)
    assert len(receiver.posts) == 1
    assert post.headers["x-mailharness-event"] == "message.received"

    listed = await slurp.call(slurp.webhooks.get_webhooks, inbox.id)
    assert [(w.id, w.event_name, w.url) for w in listed] == [
        (hook.id, "EMAIL_RECEIVED", receiver.url)
    ]
    page = await slurp.call(slurp.webhooks.get_inbox_webhooks_paginated, inbox.id)
    assert page.total_elements == 1 and page.content[0].id == hook.id
    assert (await slurp.call(slurp.webhooks.get_webhooks, other.id)) == []
    got = await slurp.call(slurp.webhooks.get_webhook, hook.id)
    assert got.id == hook.id and got.payload_json_schema.startswith("{")

    with pytest.raises(ms.ApiException) as err:
        await slurp.call(slurp.webhooks.delete_webhook, other.id, hook.id)
    assert err.value.status == 404
    await slurp.call(slurp.webhooks.delete_webhook, inbox.id, hook.id)
    assert await slurp.call(slurp.webhooks.get_webhooks, inbox.id) == []
    # The native API sees the same webhooks.
    native = (await harness.http.get("/api/v1/webhooks")).json()["items"]
    assert native == []


async def test_basic_auth_and_new_email_event(
    harness: Harness, slurp: Slurp, receiver: WebhookReceiver
) -> None:
    inbox = await slurp.call(slurp.inboxes.create_inbox)
    hook = await slurp.call(
        slurp.webhooks.create_webhook,
        inbox.id,
        ms.CreateWebhookOptions(
            url=receiver.url,
            event_name="NEW_EMAIL",
            basic_auth=ms.BasicAuthOptions(username="ci", password="p@ss:word"),
        ),
    )
    assert hook.basic_auth is True and hook.url == receiver.url
    assert hook.event_name == "NEW_EMAIL"
    await send_mail(harness, inbox.email_address)
    post = await receiver.next()
    expected = base64.b64encode(b"ci:p@ss:word").decode()
    assert post.headers["authorization"] == f"Basic {expected}"
    assert json.loads(post.body)["eventName"] == "NEW_EMAIL"
    # The native webhook's secret signs it (read from the store: shown only once).
    native = (await harness.http.get(f"/api/v1/webhooks/{hook.id}")).json()
    assert native["payload_format"] == "mailslurp-new-email"
    async with harness.runtime.db.read() as session:
        row = await session.get(Webhook, hook.id)
    assert row is not None
    secret = row.secret
    assert verify(secret, post.body, post.headers, now=int(time.time()))

    await slurp.call(slurp.webhooks.delete_webhook_by_id, hook.id)
    with pytest.raises(ms.ApiException) as err:
        await slurp.call(slurp.webhooks.get_webhook, hook.id)
    assert err.value.status == 404


async def test_unsupported_webhook_options_are_400(slurp: Slurp) -> None:
    inbox = await slurp.call(slurp.inboxes.create_inbox)
    for options in (
        ms.CreateWebhookOptions(url="http://127.0.0.1:9/x", event_name="BOUNCE"),
        ms.CreateWebhookOptions(
            url="http://127.0.0.1:9/x",
            include_headers=ms.WebhookHeaders(
                headers=[ms.WebhookHeaderNameValue(name="X-A", value="1")]
            ),
        ),
        ms.CreateWebhookOptions(url="ftp://example.com/x"),
    ):
        with pytest.raises(ms.ApiException) as err:
            await slurp.call(slurp.webhooks.create_webhook, inbox.id, options)
        assert err.value.status == 400, err.value.body
    with pytest.raises(ms.ApiException) as err:
        await slurp.call(
            slurp.webhooks.create_webhook,
            "00000000-0000-4000-8000-000000000000",
            ms.CreateWebhookOptions(url="http://127.0.0.1:9/x"),
        )
    assert err.value.status == 404


@pytest.mark.parametrize("settings_overrides", [{"admin_key": "admin-secret"}])
async def test_webhooks_are_per_tenant(harness: Harness) -> None:
    _, key_a = await harness.runtime.keys().create("tenant-a")
    _, key_b = await harness.runtime.keys().create("tenant-b")
    a, b = sdk(harness.base_url, key_a), sdk(harness.base_url, key_b)
    try:
        inbox = await a.call(a.inboxes.create_inbox)
        hook = await a.call(
            a.webhooks.create_webhook, inbox.id, ms.CreateWebhookOptions(url="http://127.0.0.1:9/")
        )
        own = await b.call(b.inboxes.create_inbox)
        for call in (
            lambda: b.webhooks.get_webhook(hook.id),
            lambda: b.webhooks.delete_webhook_by_id(hook.id),
            lambda: b.webhooks.delete_webhook(own.id, hook.id),
            lambda: b.webhooks.get_webhooks(inbox.id),
            lambda: b.webhooks.create_webhook(
                inbox.id, ms.CreateWebhookOptions(url="http://127.0.0.1:9/")
            ),
        ):
            with pytest.raises(ms.ApiException) as err:
                await asyncio.to_thread(call)
            assert err.value.status == 404
        assert [w.id for w in await a.call(a.webhooks.get_webhooks, inbox.id)] == [hook.id]
    finally:
        for client in (a, b):
            await asyncio.to_thread(client.client.close)
