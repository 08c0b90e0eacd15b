"""The Mailpit-compatible API over raw HTTP: shapes, the delete-all guard, case-insensitive
keys, send, release through the queue, chaos as fault rules, tenancy. Mail arrives
over real SMTP; both stores."""

from __future__ import annotations

import base64
import re
from typing import Any

import httpx
import pytest

from tests.compat.mailpit_support import PDF, PREFIX, deliver, mail_with_attachment
from tests.support import Harness, simple_mail

API = f"{PREFIX}/api/v1"
GO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?Z$")


async def _list(h: Harness, **params: Any) -> dict[str, Any]:
    resp = await h.http.get(f"{API}/messages", params=params)
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


async def _two_messages(h: Harness) -> tuple[dict[str, Any], dict[str, Any]]:
    """An older plain mail and a newer one with an attachment, in two inboxes."""
    await deliver(
        h, "alice@mailharness.test", simple_mail(to="alice@mailharness.test", subject="Welcome")
    )
    await deliver(
        h,
        "bob@mailharness.test",
        mail_with_attachment(to="bob@mailharness.test", subject="Invoice 7"),
    )
    listed = (await _list(h))["messages"]
    assert [m["Subject"] for m in listed] == ["Invoice 7", "Welcome"]
    return listed[1], listed[0]


async def test_list_summary_get_headers_raw_part_and_latest(harness: Harness) -> None:
    h = harness
    welcome, invoice = await _two_messages(h)
    page = await _list(h)
    assert {k: page[k] for k in ("total", "unread", "count", "messages_count", "start")} == {
        "total": 2,
        "unread": 2,
        "count": 2,
        "messages_count": 2,
        "start": 0,
    }
    assert invoice["From"] == {"Name": "Billing", "Address": "billing@example.com"}
    assert invoice["To"] == [{"Name": "Customer", "Address": "bob@mailharness.test"}]
    assert invoice["Cc"] == [{"Name": "", "Address": "audit@example.com"}]
    assert invoice["Bcc"] == [] and invoice["ReplyTo"] == []
    assert invoice["MessageID"] == "Invoice.7@example.com"
    assert invoice["Attachments"] == 1 and welcome["Attachments"] == 0
    assert invoice["Tags"] == ["billing", "invoice"]
    assert invoice["Read"] is False and invoice["Snippet"] == "See the attached file"
    assert GO_TIME.match(invoice["Created"]), invoice["Created"]
    assert invoice["Size"] > len(PDF)

    # Offset pages.
    second = await _list(h, start=1, limit=1)
    assert [m["ID"] for m in second["messages"]] == [welcome["ID"]]
    assert second["start"] == 1 and second["count"] == 1 and second["messages_count"] == 2

    # Opening a message marks it read; the full shape has both attachment lists.
    resp = await h.http.get(f"{API}/message/{invoice['ID']}")
    assert resp.status_code == 200
    full = resp.json()
    assert full["Read"] is True  # opened now (the PyPI client needs the key)
    assert full["Text"].strip() == "See the attached file" and full["HTML"] == ""
    assert full["Inline"] == []
    [att] = full["Attachments"]
    assert att["FileName"] == "invoice.pdf" and att["ContentType"] == "application/pdf"
    assert att["Size"] == len(PDF)
    assert full["ReturnPath"] == "app@example.com"
    after = await _list(h)
    assert after["unread"] == 1
    assert [m["Read"] for m in after["messages"]] == [True, False]

    headers = (await h.http.get(f"{API}/message/{invoice['ID']}/headers")).json()
    assert headers["Subject"] == ["Invoice 7"]
    assert headers["Delivered-To"] == ["bob@mailharness.test"]

    raw = await h.http.get(f"{API}/message/{invoice['ID']}/raw")
    assert raw.status_code == 200 and raw.headers["content-type"].startswith("text/plain")
    native = await h.http.get(f"/api/v1/messages/{invoice['ID']}/raw")
    assert raw.content == native.content and b"Subject: Invoice 7" in raw.content
    download = await h.http.get(f"{API}/message/{invoice['ID']}/raw", params={"dl": "1"})
    assert download.headers["content-disposition"].startswith("attachment;")

    part = await h.http.get(f"{API}/message/{invoice['ID']}/part/{att['PartID']}")
    assert part.status_code == 200 and part.content == PDF
    assert part.headers["content-type"] == "application/pdf"
    assert part.headers["content-disposition"].startswith('inline; filename="invoice.pdf"')

    latest = (await h.http.get(f"{API}/message/latest")).json()
    assert latest["ID"] == invoice["ID"]
    narrowed = await h.http.get(f"{API}/message/latest", params={"query": "Welcome"})
    assert narrowed.json()["ID"] == welcome["ID"]
    text = await h.http.get(f"{PREFIX}/view/{welcome['ID']}.txt")
    assert text.status_code == 200 and text.text.strip() == "Hi there"
    assert (await h.http.get(f"{PREFIX}/view/{welcome['ID']}.html")).status_code == 404

    missing = await h.http.get(f"{API}/message/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/plain")
    assert (await h.http.get(f"{API}/message/not-an-id/raw")).status_code == 404
    assert (await h.http.get(f"{API}/message/{invoice['ID']}/part/nope")).status_code == 404


async def test_delete_all_only_from_an_explicit_request(harness: Harness) -> None:
    h = harness
    welcome, invoice = await _two_messages(h)
    url = f"{h.base_url}{API}/messages"
    for content, ctype in [
        (b"", None),
        (b"   ", "application/json"),
        (b"not json", "application/json"),
        (b"[]", "application/json"),
        (b"null", "application/json"),
        (b"{}", "application/json"),
        (b'{"Ids ": []}', "application/json"),
        (b'{"IDs": "x", "IDs": 5}', "application/json"),
        (b"%zz=1", "application/x-www-form-urlencoded"),
    ]:
        headers = {"content-type": ctype} if ctype else {}
        resp = await h.http.request("DELETE", url, content=content, headers=headers)
        assert resp.status_code == 400, (content, resp.status_code, resp.text)
        assert resp.headers["content-type"].startswith("text/plain")
        assert (await _list(h))["total"] == 2, content

    # By ids, keys in any case; unknown and malformed ids are skipped.
    resp = await h.http.request(
        "DELETE", url, json={"ids": [welcome["ID"], "nope", "00000000-0000-4000-8000-000000000000"]}
    )
    assert resp.status_code == 200 and resp.text == "ok"
    assert [m["ID"] for m in (await _list(h))["messages"]] == [invoice["ID"]]

    # The explicit "everything": an empty IDs list.
    await deliver(h, "carol@mailharness.test", simple_mail(to="carol@mailharness.test"))
    resp = await h.http.request("DELETE", url, json={"IDs": []})
    assert resp.status_code == 200
    assert (await _list(h))["total"] == 0
    # The inboxes stay (Mailpit has none; only messages are deleted).
    assert len((await h.http.get("/api/v1/inboxes")).json()["items"]) == 3


async def test_form_encoded_ids_like_the_pypi_client(harness: Harness) -> None:
    h = harness
    welcome, invoice = await _two_messages(h)
    url = f"{h.base_url}{API}/messages"
    resp = await h.http.put(url, data={"ids": [welcome["ID"], invoice["ID"]], "Read": "True"})
    assert resp.status_code == 200, resp.text
    assert (await _list(h))["unread"] == 0
    resp = await h.http.request("DELETE", url, data={"ids": [invoice["ID"]]})
    assert resp.status_code == 200, resp.text
    assert [m["ID"] for m in (await _list(h))["messages"]] == [welcome["ID"]]


async def test_read_flags_with_case_insensitive_keys(harness: Harness) -> None:
    h = harness
    welcome, invoice = await _two_messages(h)
    url = f"{API}/messages"
    assert (await h.http.put(url, json={"iDs": [welcome["ID"]], "rEaD": True})).text == "ok"
    flags = {m["ID"]: m["Read"] for m in (await _list(h))["messages"]}
    assert flags == {welcome["ID"]: True, invoice["ID"]: False}
    # Neither IDs nor Search: every message; Read defaults to false.
    assert (await h.http.put(url, json={"Read": True})).status_code == 200
    assert (await _list(h))["unread"] == 0
    assert (await h.http.put(url, json={"search": "Invoice"})).status_code == 200
    flags = {m["ID"]: m["Read"] for m in (await _list(h))["messages"]}
    assert flags == {welcome["ID"]: True, invoice["ID"]: False}
    both = await h.http.put(url, json={"IDs": [welcome["ID"]], "Search": "x", "Read": True})
    assert both.status_code == 400
    assert (await h.http.put(url, content=b"")).status_code == 400
    assert (await h.http.put(url, json={"Read": "maybe"})).status_code == 400


async def test_search_and_delete_by_search(harness: Harness) -> None:
    h = harness
    welcome, invoice = await _two_messages(h)
    found = (await h.http.get(f"{API}/search", params={"query": "invoice"})).json()
    assert [m["ID"] for m in found["messages"]] == [invoice["ID"]]
    assert found["messages_count"] == 1 and found["total"] == 2 and found["unread"] == 2
    assert found["messages_unread"] == 1
    assert (await h.http.get(f"{API}/search")).status_code == 400
    assert (await h.http.delete(f"{API}/search")).status_code == 400
    resp = await h.http.delete(f"{API}/search", params={"query": "welcome"})
    assert resp.status_code == 200 and resp.text == "ok"
    assert [m["ID"] for m in (await _list(h))["messages"]] == [invoice["ID"]]


async def test_send_stores_the_message_like_mailpit(harness: Harness) -> None:
    h = harness
    body = {
        "from": {"email": "app@example.com", "name": 'The "App"'},
        "TO": [{"Email": "dora@mailharness.test", "Name": "Dora"}],
        "Cc": [{"Email": "eve@mailharness.test"}],
        "Bcc": ["frank@mailharness.test"],
        "ReplyTo": [{"Email": "support@example.com"}],
        "Subject": "Your receipt",
        "text": "Thanks! Code 482913",
        "HTML": "<p>Thanks! Code <b>482913</b></p>",
        "Headers": {"X-Campaign": "spring", "Subject": "ignored"},
        "Tags": ["receipts"],
        "Attachments": [
            {"content": base64.b64encode(PDF).decode(), "FileName": "receipt.pdf"},
        ],
    }
    resp = await h.http.post(f"{API}/send", json=body)
    assert resp.status_code == 200, resp.text
    message_id = resp.json()["ID"]
    full = (await h.http.get(f"{API}/message/{message_id}")).json()
    assert full["Subject"] == "Your receipt"
    assert full["From"] == {"Name": 'The "App"', "Address": "app@example.com"}
    assert full["To"] == [{"Name": "Dora", "Address": "dora@mailharness.test"}]
    assert full["Cc"] == [{"Name": "", "Address": "eve@mailharness.test"}]
    assert full["ReplyTo"] == [{"Name": "", "Address": "support@example.com"}]
    assert full["Tags"] == ["receipts"] and full["HTML"].startswith("<p>Thanks!")
    assert [a["FileName"] for a in full["Attachments"]] == ["receipt.pdf"]
    assert [a["ContentType"] for a in full["Attachments"]] == ["application/pdf"]
    headers = (await h.http.get(f"{API}/message/{message_id}/headers")).json()
    assert headers["X-Campaign"] == ["spring"] and headers["Subject"] == ["Your receipt"]
    assert "Bcc" not in headers
    # It went through the ingest funnel: a copy per recipient inbox (listed once
    # here, as in Mailpit), codes extracted.
    page = await _list(h)
    assert page["total"] == 1 and page["messages"][0]["ID"] == message_id
    assert len((await h.http.get("/api/v1/messages")).json()["items"]) == 3
    native = (await h.http.get(f"/api/v1/messages/{message_id}")).json()
    assert native["codes"] == ["482913"]
    inboxes = {i["address"] for i in (await h.http.get("/api/v1/inboxes")).json()["items"]}
    assert inboxes == {"dora@mailharness.test", "eve@mailharness.test", "frank@mailharness.test"}

    for bad in [
        {},
        {"To": [{"Email": "x@mailharness.test"}]},
        {"From": {"Email": "a@example.com"}},
        {"From": {"Email": "a@example.com"}, "To": [{"Email": "not an address"}]},
        {"From": {"Email": "a@example.com"}, "Bcc": ["nope"]},
        {"From": {"Email": "a@example.com"}, "To": "x@mailharness.test"},
        {
            "From": {"Email": "a@example.com"},
            "To": [{"Email": "x@mailharness.test"}],
            "Attachments": [{"Content": "%%%", "Filename": "a.txt"}],
        },
    ]:
        resp = await h.http.post(f"{API}/send", json=bad)
        assert resp.status_code == 400, (bad, resp.text)
        assert set(resp.json()) == {"Error"}, resp.text
    assert (await h.http.post(f"{API}/send", content=b"{")).status_code == 400
    assert (await _list(h))["total"] == 1


async def test_release_goes_through_the_delivery_queue(harness: Harness) -> None:
    h = harness
    welcome, _ = await _two_messages(h)
    resp = await h.http.post(
        f"{API}/message/{welcome['ID']}/release", json={"to": ["gina@mailharness.test"]}
    )
    assert resp.status_code == 200 and resp.text == "ok"
    [delivery] = (
        await h.http.get("/api/v1/deliveries", params={"recipient": "gina@mailharness.test"})
    ).json()["items"]
    done = await h.http.get(f"/api/v1/deliveries/{delivery['id']}/wait", params={"timeout": 20})
    assert done.status_code == 200 and done.json()["state"] == "delivered"
    released = await h.http.get(f"{API}/search", params={"query": "gina@mailharness.test"})
    assert [m["Subject"] for m in released.json()["messages"]] == ["Welcome"]
    assert (await h.http.post(f"{API}/message/{welcome['ID']}/release", json={})).status_code == 400
    unknown = await h.http.post(
        f"{API}/message/00000000-0000-4000-8000-000000000000/release", json={"To": ["a@b.test"]}
    )
    assert unknown.status_code == 404


async def test_chaos_triggers_are_fault_rules(harness: Harness) -> None:
    h = harness
    off = (await h.http.get(f"{API}/chaos")).json()
    assert off["Recipient"] == {"ErrorCode": 451, "Probability": 0}
    resp = await h.http.put(
        f"{API}/chaos", json={"recipient": {"errorcode": 452, "probability": 100}}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["Recipient"] == {"ErrorCode": 452, "Probability": 100}
    assert resp.json()["Sender"]["Probability"] == 0
    [rule] = (await h.http.get("/api/v1/rules")).json()["items"]
    assert rule["stage"] == "rcpt" and rule["probability"] == 1.0
    assert rule["reply"]["code"] == 452
    with pytest.raises(Exception) as refused:
        await h.send(
            "app@example.com", ["x@mailharness.test"], simple_mail(to="x@mailharness.test")
        )
    assert "452" in str(refused.value)
    # Omitted triggers reset: the rule is gone and mail flows again.
    assert (await h.http.put(f"{API}/chaos", json={})).json()["Recipient"]["Probability"] == 0
    assert (await h.http.get("/api/v1/rules")).json()["items"] == []
    await deliver(h, "x@mailharness.test", simple_mail(to="x@mailharness.test"))
    auth = await h.http.put(
        f"{API}/chaos", json={"Authentication": {"ErrorCode": 535, "Probability": 50}}
    )
    assert auth.status_code == 400
    bad = await h.http.put(f"{API}/chaos", json={"Sender": {"ErrorCode": 250, "Probability": 5}})
    assert bad.status_code == 400
    assert (await h.http.get("/api/v1/rules")).json()["items"] == []


async def test_info_and_webui(harness: Harness) -> None:
    h = harness
    await _two_messages(h)
    info = (await h.http.get(f"{API}/info")).json()
    assert info["Messages"] == 2 and info["Unread"] == 2
    assert info["Version"].startswith("mailharness ")
    assert info["Database"] in ("sqlite", "postgresql")
    assert info["RuntimeStats"]["SMTPAccepted"] >= 2
    webui = (await h.http.get(f"{API}/webui")).json()
    assert webui["ChaosEnabled"] is True and webui["MessageRelay"]["Enabled"] is False


async def test_each_key_sees_only_its_own_mailbox(harness: Harness) -> None:
    h = harness
    keys = h.runtime.keys()
    _, key_a = await keys.create("a")
    _, key_b = await keys.create("b")
    a = httpx.BasicAuth("ci", key_a)
    b = httpx.BasicAuth("anyone", key_b)
    sent = await h.http.post(
        f"{API}/send",
        json={"From": {"Email": "app@example.com"}, "To": [{"Email": "a1@mailharness.test"}]},
        auth=a,
    )
    assert sent.status_code == 200, sent.text
    mine = sent.json()["ID"]

    anonymous = await h.http.get(f"{API}/messages")
    assert anonymous.status_code == 401 and "Basic" in anonymous.headers["www-authenticate"]
    wrong = await h.http.get(f"{API}/messages", auth=httpx.BasicAuth("x", "mhk_wrong"))
    assert wrong.status_code == 401
    assert (await h.http.get(f"{API}/messages", headers={"X-API-Key": key_a})).json()["total"] == 1

    listed_b = (await h.http.get(f"{API}/messages", auth=b)).json()
    assert listed_b["total"] == 0 and listed_b["messages"] == []
    assert (await h.http.get(f"{API}/message/{mine}", auth=b)).status_code == 404
    assert (await h.http.get(f"{API}/message/latest", auth=b)).status_code == 404
    assert (await h.http.get(f"{API}/message/{mine}/raw", auth=b)).status_code == 404
    # B's "delete everything" and "mark everything read" touch only B's mailbox.
    assert (
        await h.http.request("DELETE", f"{API}/messages", json={"IDs": []}, auth=b)
    ).status_code == 200
    assert (
        await h.http.request("DELETE", f"{API}/messages", json={"IDs": [mine]}, auth=b)
    ).status_code == 200
    assert (await h.http.put(f"{API}/messages", json={"Read": True}, auth=b)).status_code == 200
    listed_a = (await h.http.get(f"{API}/messages", auth=a)).json()
    assert listed_a["total"] == 1 and listed_a["unread"] == 1


async def test_mail_to_several_inboxes_is_one_message(harness: Harness) -> None:
    h = harness
    rcpts = ["ann@mailharness.test", "ben@mailharness.test", "cy@mailharness.test"]
    reply = await h.send("app@example.com", rcpts, simple_mail(to=rcpts[0], subject="Team"))
    assert reply.code == 250
    await deliver(h, "ann@mailharness.test", simple_mail(to="ann@mailharness.test", subject="Solo"))
    page = await _list(h)
    assert [m["Subject"] for m in page["messages"]] == ["Solo", "Team"]
    assert page["total"] == 2 and page["unread"] == 2
    team = page["messages"][1]
    assert {a["Address"] for a in team["Bcc"]} == {"ben@mailharness.test", "cy@mailharness.test"}
    found = (await h.http.get(f"{API}/search", params={"query": "team"})).json()
    assert found["messages_count"] == 1 and found["total"] == 2

    # Reading it marks every copy; the native API shows each inbox's copy read.
    await h.http.get(f"{API}/message/{team['ID']}")
    native = (await h.http.get("/api/v1/messages", params={"q": "team"})).json()["items"]
    assert len(native) == 3 and all(m["seen"] for m in native)
    assert (await _list(h))["unread"] == 1
    assert (await h.http.put(f"{API}/messages", json={"IDs": [team["ID"]]})).text == "ok"
    native = (await h.http.get("/api/v1/messages", params={"q": "team"})).json()["items"]
    assert not any(m["seen"] for m in native)

    # Deleting it deletes every copy, not just the one listed.
    resp = await h.http.request("DELETE", f"{API}/messages", json={"IDs": [team["ID"]]})
    assert resp.status_code == 200
    assert (await h.http.get("/api/v1/messages", params={"q": "team"})).json()["items"] == []
    assert [m["Subject"] for m in (await _list(h))["messages"]] == ["Solo"]
