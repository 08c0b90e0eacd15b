"""The PyPI ``mailpit-api-client`` (sync, httpx) against ``/compat/mailpit``: list, get,
headers, attachment, read flags and delete by ids (its form-encoded bodies), and
its "delete all" (an empty body) refused. Mail arrives over real SMTP; both stores.

The client is synchronous, so its calls run in a thread while the harness serves
on the test's event loop.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from mailpit.client.api import API

from tests.compat.mailpit_support import PDF, base_url, deliver, mail_with_attachment
from tests.support import Harness, simple_mail


async def test_pypi_client_reads_marks_and_deletes(harness: Harness) -> None:
    h = harness
    await deliver(
        h, "alice@mailharness.test", simple_mail(to="alice@mailharness.test", subject="Hi")
    )
    await deliver(
        h, "bob@mailharness.test", mail_with_attachment(to="bob@mailharness.test", subject="Bill")
    )
    api = API(base_url(h), timeout=10)

    listed = await asyncio.to_thread(api.get_messages)
    assert (listed.total, listed.unread, listed.count, listed.start) == (2, 2, 2, 0)
    bill, hi = listed.messages
    assert (bill.subject, hi.subject) == ("Bill", "Hi")
    assert bill.from_ is not None and bill.from_.address == "billing@example.com"
    assert [c.address for c in bill.to] == ["bob@mailharness.test"]
    assert bill.attachments == 1 and hi.attachments == 0 and bill.read is False
    assert bill.created.tzinfo is not None

    page = await asyncio.to_thread(api.get_messages, 1, 1)
    assert [m.id for m in page.messages] == [hi.id] and page.start == 1

    message = await asyncio.to_thread(api.get_message, bill.id)
    assert message.subject == "Bill" and message.read is True
    assert message.message_id == "Bill@example.com"
    assert [c.address for c in message.cc or []] == ["audit@example.com"]
    assert message.text is not None and message.text.strip() == "See the attached file"
    [attachment] = message.attachments
    assert attachment.file_name == "invoice.pdf" and attachment.size == len(PDF)

    headers = await asyncio.to_thread(api.get_message_headers, bill.id)
    assert headers.delivered_to == ["bob@mailharness.test"]
    assert headers.message_id == ["<Bill@example.com>"]
    assert headers.from_ == ["Billing <billing@example.com>"]

    # It returns response.text; the PDF has non-UTF-8 bytes, so compare the raw bytes.
    await asyncio.to_thread(api.get_message_attachment, bill.id, attachment.part_id)
    assert api.last_response is not None and api.last_response.content == PDF

    # Form-encoded ids=...&Read=True (real Mailpit answers this with 400).
    await asyncio.to_thread(api.put_messages, [hi.id], "Read", True)
    assert (await asyncio.to_thread(api.get_messages)).unread == 0
    await asyncio.to_thread(api.put_messages, [hi.id, bill.id], "Read", False)
    assert (await asyncio.to_thread(api.get_messages)).unread == 2

    # Delete by ids (form-encoded; real Mailpit would delete everything here).
    await asyncio.to_thread(api.delete_messages, [hi.id])
    assert [m.id for m in (await asyncio.to_thread(api.get_messages)).messages] == [bill.id]

    # Its "delete all" is an empty body: refused, nothing deleted.
    with pytest.raises(httpx.HTTPStatusError) as refused:
        await asyncio.to_thread(api.delete_messages, [])
    assert refused.value.response.status_code == 400
    assert (await asyncio.to_thread(api.get_messages)).total == 1

    # Unknown ids: 404 like Mailpit.
    with pytest.raises(httpx.HTTPStatusError) as missing:
        await asyncio.to_thread(api.get_message, "00000000-0000-4000-8000-000000000000")
    assert missing.value.response.status_code == 404
