"""The official MailSlurp SDK against a real server: a password-reset flow over real
SMTP, send-and-confirm into another inbox with its delivery status, attachments
(upload, then the base64 download), links, codes and the other email reads."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator
from datetime import UTC

import mailslurp_client as ms
import pytest

from tests.compat.mailslurp_support import RESET_MAIL, Slurp, sdk
from tests.support import Harness


@pytest.fixture
async def slurp(harness: Harness) -> AsyncIterator[Slurp]:
    client = sdk(harness.base_url)
    yield client
    await asyncio.to_thread(client.client.close)


async def test_password_reset_flow(harness: Harness, slurp: Slurp) -> None:
    inbox = await slurp.call(slurp.inboxes.create_inbox)
    assert isinstance(inbox, ms.InboxDto)
    assert inbox.email_address.endswith("@mailharness.test")
    assert inbox.created_at.tzinfo is not None
    assert re.fullmatch(r"[0-9a-f-]{36}", inbox.id)

    waiting = asyncio.create_task(
        slurp.call(
            slurp.waits.wait_for_latest_email, inbox_id=inbox.id, timeout=10_000, unread_only=True
        )
    )
    await harness.runtime.bus.until_subscribers(f"inbox:{inbox.id}", 1)
    raw = RESET_MAIL.replace(b"{to}", inbox.email_address.encode())
    reply = await harness.send("no-reply@acme.example", [inbox.email_address], raw)
    assert reply.code == 250

    email = await waiting
    assert isinstance(email, ms.Email)
    assert email.subject == "Reset your Acme password"
    assert email._from == "no-reply@acme.example"
    assert email.sender.name == "Acme Accounts"
    assert email.to == [inbox.email_address]
    assert email.inbox_id == inbox.id
    assert email.is_html is True and "<b>481516</b>" in email.body
    assert email.message_id == "reset-1@acme.example"
    assert email.headers["Subject"] == "Reset your Acme password"
    assert email.read is True
    assert email.created_at.tzinfo is not None

    links = await slurp.call(slurp.emails.get_email_links, email.id)
    assert links.links == ["https://acme.example/reset?token=abc&u=42"]
    codes = await slurp.call(slurp.emails.get_email_codes, email.id)
    assert codes.found is True and codes.code == "481516"
    assert codes.candidates[0].method == "PATTERN" and 0 < codes.candidates[0].confidence <= 1
    match = await slurp.call(
        slurp.emails.get_email_content_match,
        email.id,
        ms.ContentMatchOptions(pattern=r"code is <b>(\d{6})</b>"),
    )
    assert match.matches == ["code is <b>481516</b>", "481516"]
    lines = await slurp.call(slurp.emails.get_email_text_lines, email.id)
    assert "Your code is 481516." in lines.lines

    # Already read: a second unread-only wait has nothing and times out with 404.
    with pytest.raises(ms.ApiException) as err:
        await slurp.call(
            slurp.waits.wait_for_latest_email, inbox_id=inbox.id, timeout=200, unread_only=True
        )
    assert err.value.status == 404


async def test_email_reads(harness: Harness, slurp: Slurp) -> None:
    inbox = await slurp.call(
        slurp.inboxes.create_inbox_with_options,
        ms.CreateInboxDto(name="Reads", description="for reads", tags=["a", "b"], favourite=True),
    )
    assert (inbox.name, inbox.description, inbox.favourite) == ("Reads", "for reads", True)
    raw = RESET_MAIL.replace(b"{to}", inbox.email_address.encode())
    await harness.send("no-reply@acme.example", [inbox.email_address], raw)
    [preview] = await slurp.call(
        slurp.waits.wait_for_email_count, inbox_id=inbox.id, count=1, timeout=5000
    )
    assert preview.read is False  # previews do not mark

    page = await slurp.call(slurp.inboxes.get_inbox_emails_paginated, inbox.id)
    assert page.total_elements == 1 and page.content[0].id == preview.id
    count = await slurp.call(slurp.inboxes.get_inbox_email_count, inbox.id)
    assert count.total_elements == 1
    emails = await slurp.call(slurp.emails.get_emails_paginated, inbox_id=[inbox.id], size=10)
    assert emails.total_elements == 1 and emails.content[0].text_excerpt.startswith("Your code")

    html = await slurp.call(slurp.emails.get_email_html, preview.id)
    assert "<b>481516</b>" in html
    raw_json = await slurp.call(slurp.emails.get_raw_email_json, preview.id)
    assert raw_json.content.encode() == raw
    raw_resp = await slurp.call(
        slurp.emails.get_raw_email_contents, preview.id, _preload_content=False
    )
    assert raw_resp.data == raw

    unread = await slurp.call(slurp.emails.mark_as_read, preview.id, read=False)
    assert unread.read is False
    full = await slurp.call(slurp.emails.get_email, preview.id)
    assert full.read is True
    assert full.updated_at.tzinfo == UTC or full.updated_at.utcoffset().total_seconds() == 0

    found = await slurp.call(slurp.emails.get_emails_paginated, search_filter="481516")
    assert [e.id for e in found.content] == [preview.id]
    missing = await slurp.call(slurp.emails.get_emails_paginated, search_filter="nothing-like-it")
    assert missing.total_elements == 0 and missing.empty is True
    latest = await slurp.call(slurp.emails.get_latest_email, inbox_ids=[inbox.id])
    assert latest.id == preview.id
    html_json = await slurp.call(slurp.emails.get_email_html_json, preview.id)
    assert html_json.subject == "Reset your Acme password" and "<b>" in html_json.body
    await slurp.call(slurp.emails.mark_as_read, preview.id, read=False)
    assert (await slurp.call(slurp.emails.get_unread_email_count)).count == 1

    await slurp.call(slurp.emails.delete_email, preview.id)
    with pytest.raises(ms.ApiException) as err:
        await slurp.call(slurp.emails.get_email, preview.id)
    assert err.value.status == 404
    await harness.send("no-reply@acme.example", [inbox.email_address], raw)
    await slurp.call(slurp.waits.wait_for_latest_email, inbox_id=inbox.id, timeout=5000)
    await slurp.call(slurp.emails.delete_all_emails)
    assert (await slurp.call(slurp.inboxes.get_inbox_email_count, inbox.id)).total_elements == 0


async def test_send_and_confirm_with_delivery_status(slurp: Slurp) -> None:
    sender = await slurp.call(slurp.inboxes.create_inbox, name="Shop")
    receiver = await slurp.call(slurp.inboxes.create_inbox)
    sent = await slurp.call(
        slurp.inboxes.send_email_and_confirm,
        sender.id,
        ms.SendEmailOptions(
            to=[receiver.email_address],
            subject="Your order",
            body="<p>Order <b>1234</b> shipped</p>",
            is_html=True,
            custom_headers={"X-Order": "1234"},
        ),
    )
    assert isinstance(sent, ms.SentEmailDto)
    assert sent.inbox_id == sender.id and sent.transport == "SANDBOX_LOCAL"
    assert sent.to == [receiver.email_address] and sent.is_html is True
    assert sent._from == sender.email_address

    status = await slurp.call(
        slurp.sent.wait_for_delivery_statuses, sent_id=sent.id, timeout=10_000
    )
    assert isinstance(status, ms.DeliveryStatusDto)
    assert status.sent_id == sent.id and status.smtp_status_code == 250
    assert status.recipients == [receiver.email_address]
    assert status.smtp_response.startswith("250 2.0.0")

    email = await slurp.call(
        slurp.waits.wait_for_latest_email, inbox_id=receiver.id, timeout=10_000
    )
    assert email.subject == "Your order" and email.headers["X-Order"] == "1234"
    assert email._from == sender.email_address

    statuses = await slurp.call(slurp.sent.get_sent_delivery_statuses_by_sent_id, sent.id)
    assert [s.id for s in statuses.content] == [status.id]
    by_inbox = await slurp.call(
        slurp.sent.wait_for_delivery_statuses, inbox_id=sender.id, timeout=5000
    )
    assert by_inbox.id == status.id
    one = await slurp.call(slurp.sent.get_sent_delivery_status, status.id)
    assert one.smtp_status_code == 250
    got = await slurp.call(slurp.sent.get_sent_email, sent.id)
    assert got.subject == "Your order" and "<b>1234</b>" in got.body
    page = await slurp.call(slurp.sent.get_sent_emails, inbox_id=sender.id)
    assert page.total_elements == 1 and page.content[0].id == sent.id

    # Plain send (void) works too, and the receiver then has two.
    await slurp.call(
        slurp.inboxes.send_email,
        sender.id,
        ms.SendEmailOptions(to=[receiver.email_address], subject="Second", body="plain"),
    )
    previews = await slurp.call(
        slurp.waits.wait_for_email_count, inbox_id=receiver.id, count=2, timeout=10_000
    )
    assert [p.subject for p in previews] == ["Your order", "Second"]


async def test_attachments_upload_and_base64_download(slurp: Slurp) -> None:
    sender = await slurp.call(slurp.inboxes.create_inbox)
    receiver = await slurp.call(slurp.inboxes.create_inbox)
    payload = bytes(range(256)) * 4  # not UTF-8: the base64 variant is the way to read it
    [upload_id] = await slurp.call(
        slurp.attachments.upload_attachment,
        ms.UploadAttachmentOptions(
            base64_contents=base64.b64encode(payload).decode(),
            content_type="application/pdf",
            filename="invoice.pdf",
        ),
    )
    await slurp.call(
        slurp.inboxes.send_email_and_confirm,
        sender.id,
        ms.SendEmailOptions(
            to=[receiver.email_address], subject="Invoice", body="attached", attachments=[upload_id]
        ),
    )
    matching = await slurp.call(
        slurp.waits.wait_for_matching_first_email,
        inbox_id=receiver.id,
        timeout=10_000,
        match_options=ms.MatchOptions(
            conditions=[ms.ConditionOption(condition="HAS_ATTACHMENTS", value="TRUE")]
        ),
    )
    assert len(matching.attachments) == 1
    [meta] = await slurp.call(slurp.emails.get_email_attachments, matching.id)
    assert (meta.name, meta.content_type, meta.content_length) == (
        "invoice.pdf",
        "application/pdf",
        len(payload),
    )
    one = await slurp.call(slurp.emails.get_attachment_meta_data, matching.id, meta.id)
    assert one.id == meta.id
    dto = await slurp.call(slurp.emails.download_attachment_base64, matching.id, meta.id)
    assert base64.b64decode(dto.base64_file_contents) == payload
    assert dto.size_bytes == len(payload) and dto.content_type == "application/pdf"
    resp = await slurp.call(
        slurp.emails.download_attachment, matching.id, meta.id, _preload_content=False
    )
    assert resp.data == payload

    with pytest.raises(ms.ApiException) as err:
        await slurp.call(
            slurp.inboxes.send_email,
            sender.id,
            ms.SendEmailOptions(to=[receiver.email_address], attachments=["nope"]),
        )
    assert err.value.status == 404


async def test_reply_and_forward(slurp: Slurp) -> None:
    a, b, c = [await slurp.call(slurp.inboxes.create_inbox) for _ in range(3)]
    [upload] = await slurp.call(
        slurp.attachments.upload_attachment,
        ms.UploadAttachmentOptions(
            base64_contents=base64.b64encode(b"a,b\n1,2\n").decode(),
            content_type="text/csv",
            filename="report.csv",
        ),
    )
    await slurp.call(
        slurp.inboxes.send_email_and_confirm,
        a.id,
        ms.SendEmailOptions(
            to=[b.email_address], subject="Question", body="Ready?", attachments=[upload]
        ),
    )
    question = await slurp.call(slurp.waits.wait_for_latest_email, inbox_id=b.id, timeout=10_000)

    reply = await slurp.call(
        slurp.emails.reply_to_email,
        question.id,
        ms.ReplyToEmailOptions(body="<p>Yes</p>", is_html=True),
    )
    assert reply.to == [a.email_address] and reply.subject == "Re: Question"
    answer = await slurp.call(slurp.waits.wait_for_latest_email, inbox_id=a.id, timeout=10_000)
    assert answer.subject == "Re: Question" and answer.body.strip() == "<p>Yes</p>"
    assert answer.in_reply_to == question.message_id
    assert answer.headers["References"] == f"<{question.message_id}>"

    forwarded = await slurp.call(
        slurp.emails.forward_email, question.id, ms.ForwardEmailOptions(to=[c.email_address])
    )
    assert forwarded.subject == "Fwd: Question" and len(forwarded.attachments) == 1
    copy = await slurp.call(slurp.waits.wait_for_latest_email, inbox_id=c.id, timeout=10_000)
    assert copy.subject == "Fwd: Question" and copy.body.strip() == "Ready?"
    [meta] = await slurp.call(slurp.emails.get_email_attachments, copy.id)
    assert (meta.name, meta.content_type) == ("report.csv", "text/csv")
    data = await slurp.call(slurp.emails.download_attachment_base64, copy.id, meta.id)
    assert base64.b64decode(data.base64_file_contents) == b"a,b\n1,2\n"
