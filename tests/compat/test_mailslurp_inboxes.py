"""MailSlurp inbox operations, authentication and wire details through the official SDK:
create (query options, body options, defaults), get, list, Spring pages, delete, delete
all; ``x-api-key`` is our API key (401 without one in key mode, another tenant's inbox
is 404); a trailing slash in the SDK's host works; empty JSON bodies are accepted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import mailslurp_client as ms
import pytest

from tests.compat.mailslurp_support import Slurp, sdk, send_mail
from tests.support import Harness


@pytest.fixture
async def slurp(harness: Harness) -> AsyncIterator[Slurp]:
    client = sdk(harness.base_url)
    yield client
    await asyncio.to_thread(client.client.close)


async def test_create_get_list_delete(harness: Harness, slurp: Slurp) -> None:
    a = await slurp.call(
        slurp.inboxes.create_inbox,
        email_address="signup@mailharness.test",
        name="Signup",
        description="signup flow",
        tags=["ci", "signup"],
        favourite=True,
        expires_in=3_600_000,
    )
    assert a.email_address == "signup@mailharness.test"
    assert (a.local_part, a.domain) == ("signup", "mailharness.test")
    assert (a.name, a.description, a.favourite, sorted(a.tags)) == (
        "Signup",
        "signup flow",
        True,
        ["ci", "signup"],
    )
    assert a.inbox_type == "HTTP_INBOX" and a.read_only is False and a.virtual_inbox is False
    remaining = (a.expires_at - datetime.now(UTC)).total_seconds()
    assert 3500 < remaining <= 3600

    b = await slurp.call(slurp.inboxes.create_inbox_with_defaults)
    c = await slurp.call(slurp.inboxes.create_inbox_with_options, ms.CreateInboxDto(prefix="reset"))
    assert c.email_address.startswith("reset-")
    got = await slurp.call(slurp.inboxes.get_inbox, a.id)
    assert (got.id, got.description, got.favourite) == (a.id, "signup flow", True)

    listed = await slurp.call(slurp.inboxes.get_inboxes)
    assert [i.id for i in listed] == [a.id, b.id, c.id]
    page = await slurp.call(slurp.inboxes.get_all_inboxes, page=1, size=2, sort="ASC")
    assert isinstance(page, ms.PageInboxProjection)
    assert (page.total_elements, page.total_pages, page.number, page.size) == (3, 2, 1, 2)
    assert [i.id for i in page.content] == [c.id]
    assert page.last is True and page.first is False and page.number_of_elements == 1
    assert page.pageable.offset == 2 and page.content[0].team_access is True
    favourites = await slurp.call(slurp.inboxes.get_all_inboxes, favourite=True)
    assert [i.id for i in favourites.content] == [a.id]
    found = await slurp.call(slurp.inboxes.get_all_inboxes, search="signup")
    assert [i.id for i in found.content] == [a.id]

    await send_mail(harness, a.email_address)
    await slurp.call(slurp.waits.wait_for_latest_email, inbox_id=a.id, timeout=5000)
    await slurp.call(slurp.inboxes.delete_all_inbox_emails, a.id)
    count = await slurp.call(slurp.inboxes.get_inbox_email_count, a.id)
    assert count.total_elements == 0

    await slurp.call(slurp.inboxes.delete_inbox, a.id)
    with pytest.raises(ms.ApiException) as err:
        await slurp.call(slurp.inboxes.get_inbox, a.id)
    assert err.value.status == 404
    await slurp.call(slurp.inboxes.delete_all_inboxes)
    assert await slurp.call(slurp.inboxes.get_inboxes) == []


async def test_open_mode_accepts_any_key(harness: Harness) -> None:
    keyed = sdk(harness.base_url, "the-key-from-our-mailslurp-account")
    try:
        inbox = await keyed.call(keyed.inboxes.create_inbox)
        assert inbox.user_id == "00000000-0000-0000-0000-000000000000"
    finally:
        await asyncio.to_thread(keyed.client.close)


async def test_bad_input_is_400(slurp: Slurp) -> None:
    with pytest.raises(ms.ApiException) as err:
        await slurp.call(slurp.inboxes.create_inbox, email_address="not an address")
    assert err.value.status == 400
    # Refused by the native schemas behind the adapter: still 400, never 500.
    with pytest.raises(ms.ApiException) as err:
        await slurp.call(slurp.inboxes.create_inbox, expires_in=10**15)
    assert err.value.status == 400
    inbox = await slurp.call(slurp.inboxes.create_inbox)
    with pytest.raises(ms.ApiException) as err:
        await slurp.call(
            slurp.inboxes.send_email,
            inbox.id,
            ms.SendEmailOptions(to=[inbox.email_address], subject="x" * 2000),
        )
    assert err.value.status == 400
    with pytest.raises(ms.ApiException) as err:
        await slurp.call(
            slurp.inboxes.send_email, inbox.id, ms.SendEmailOptions(to=["not an address"])
        )
    assert err.value.status == 400
    with pytest.raises(ms.ApiException) as err:
        await slurp.call(slurp.inboxes.create_inbox, email_address=inbox.email_address)
    assert err.value.status == 409


async def test_trailing_slash_host_and_empty_json_bodies(harness: Harness) -> None:
    slashed = sdk(harness.base_url, suffix="/")
    try:
        inbox = await slashed.call(slashed.inboxes.create_inbox)
        got = await slashed.call(slashed.inboxes.get_inbox, inbox.id)
        assert got.id == inbox.id
    finally:
        await asyncio.to_thread(slashed.client.close)
    # What the SDK sends for option-less POSTs: JSON content type, no body.
    headers = {"content-type": "application/json"}
    resp = await harness.http.post("/compat/mailslurp/inboxes/withOptions", headers=headers)
    assert resp.status_code == 201, resp.text
    assert resp.json()["createdAt"].endswith("Z")
    resp = await harness.http.post("/compat/mailslurp//inboxes", headers=headers)
    assert resp.status_code == 201, resp.text


@pytest.mark.parametrize("settings_overrides", [{"admin_key": "admin-secret"}])
async def test_api_key_is_ours_and_tenants_are_isolated(harness: Harness) -> None:
    _, key_a = await harness.runtime.keys().create("tenant-a")
    _, key_b = await harness.runtime.keys().create("tenant-b")
    anonymous, a, b = (
        sdk(harness.base_url),
        sdk(harness.base_url, key_a),
        sdk(harness.base_url, key_b),
    )
    try:
        with pytest.raises(ms.ApiException) as err:
            await anonymous.call(anonymous.inboxes.create_inbox)
        assert err.value.status == 401
        with pytest.raises(ms.ApiException) as err:
            await sdk(harness.base_url, "wrong").call(
                sdk(harness.base_url, "wrong").inboxes.get_inboxes
            )
        assert err.value.status == 401

        inbox = await a.call(a.inboxes.create_inbox)
        assert inbox.user_id != (await b.call(b.inboxes.create_inbox)).user_id
        await send_mail(harness, inbox.email_address)
        email = await a.call(a.waits.wait_for_latest_email, inbox_id=inbox.id, timeout=5000)
        for call in (
            lambda: b.inboxes.get_inbox(inbox.id),
            lambda: b.emails.get_email(email.id),
            lambda: b.waits.wait_for_latest_email(inbox_id=inbox.id, timeout=100),
            lambda: b.inboxes.get_inbox_emails_paginated(inbox.id),
            lambda: b.inboxes.delete_inbox(inbox.id),
            lambda: b.emails.get_emails_paginated(inbox_id=[inbox.id]),
        ):
            with pytest.raises(ms.ApiException) as err:
                await asyncio.to_thread(call)
            assert err.value.status == 404
        # Sent mail, delivery statuses and uploads are per tenant too.
        [upload] = await a.call(
            a.attachments.upload_attachment, ms.UploadAttachmentOptions(base64_contents="aGk=")
        )
        sent = await a.call(
            a.inboxes.send_email_and_confirm,
            inbox.id,
            ms.SendEmailOptions(to=[inbox.email_address], body="x", attachments=[upload]),
        )
        status = await a.call(a.sent.wait_for_delivery_statuses, sent_id=sent.id, timeout=10_000)
        own = await b.call(b.inboxes.create_inbox)
        for call in (
            lambda: b.sent.get_sent_email(sent.id),
            lambda: b.sent.wait_for_delivery_statuses(sent_id=sent.id, timeout=100),
            lambda: b.sent.get_sent_delivery_status(status.id),
            lambda: b.sent.get_sent_delivery_statuses_by_sent_id(sent.id),
            lambda: b.sent.get_raw_sent_email_json(sent.id),
            lambda: b.inboxes.send_email(
                own.id, ms.SendEmailOptions(to=[own.email_address], attachments=[upload])
            ),
            lambda: b.inboxes.send_email(inbox.id, ms.SendEmailOptions(to=[own.email_address])),
        ):
            with pytest.raises(ms.ApiException) as err:
                await asyncio.to_thread(call)
            assert err.value.status == 404
        assert (await b.call(b.sent.get_sent_emails)).total_elements == 0
        assert (await b.call(b.sent.get_sent_delivery_statuses)).total_elements == 0
        assert (await b.call(b.emails.get_emails_paginated)).total_elements == 0
        assert (await a.call(a.emails.get_emails_paginated)).total_elements >= 1
        assert [i.id for i in await b.call(b.inboxes.get_inboxes)] != [inbox.id]
    finally:
        for client in (anonymous, a, b):
            await asyncio.to_thread(client.client.close)


async def test_responses_pass_the_sdk_models_strictly(harness: Harness) -> None:
    """Every field the SDK requires is present and non-null in what we send (the SDK's own
    check, re-run here on the raw JSON with a model per endpoint)."""
    http: httpx.AsyncClient = harness.http
    inbox = (await http.post("/compat/mailslurp/inboxes")).json()
    await send_mail(harness, inbox["emailAddress"])
    email = (
        await http.get(
            "/compat/mailslurp/waitForLatestEmail",
            params={"inboxId": inbox["id"], "timeout": 5000},
        )
    ).json()
    client = ms.ApiClient()
    try:
        for body, model in (
            (inbox, "InboxDto"),
            (email, "Email"),
            ((await http.get("/compat/mailslurp/emails")).json(), "PageEmailProjection"),
            ((await http.get("/compat/mailslurp/inboxes/paginated")).json(), "PageInboxProjection"),
            (
                (
                    await http.get(f"/compat/mailslurp/inboxes/{inbox['id']}/emails/paginated")
                ).json(),
                "PageEmailPreview",
            ),
        ):
            client._ApiClient__deserialize(body, model)  # raises on a missing required field
    finally:
        client.close()
    assert email["createdAt"].endswith("Z") and len(email["createdAt"]) == 24
