"""Mailpit's search syntax through ``/compat/mailpit`` (handed to our search service):
every Mailpit term used by client suites, over real SMTP mail, on both stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tests.compat.mailpit_support import PREFIX, deliver, mail_with_attachment
from tests.support import Harness, simple_mail

API = f"{PREFIX}/api/v1"


async def _subjects(h: Harness, query: str, **params: str) -> list[str]:
    resp = await h.http.get(f"{API}/search", params={"query": query, **params})
    assert resp.status_code == 200, (query, resp.text)
    data = resp.json()
    assert data["messages_count"] == len(data["messages"])
    return [m["Subject"] for m in data["messages"]]


async def test_mailpit_search_terms(harness: Harness) -> None:
    h = harness
    await deliver(
        h,
        "alice@mailharness.test",
        simple_mail(to="alice@mailharness.test", subject="Password reset", body="code 123456"),
        sender="noreply@shop.example",
    )
    await deliver(
        h,
        "bob@mailharness.test",
        mail_with_attachment(to="bob@mailharness.test", subject="Invoice 7"),
    )
    await deliver(
        h,
        "alice@mailharness.test",
        simple_mail(to="alice@mailharness.test", subject="Welcome aboard", body="Hello Alice"),
    )
    # Bcc: an envelope recipient not in the headers.
    reply = await h.send(
        "news@shop.example",
        ["carol@mailharness.test", "dan@mailharness.test"],
        simple_mail(to="carol@mailharness.test", subject="Weekly news", sender="news@shop.example"),
    )
    assert reply.code == 250

    assert await _subjects(h, "subject:Welcome") == ["Welcome aboard"]
    assert await _subjects(h, 'subject:"Password reset"') == ["Password reset"]
    assert await _subjects(h, "subject:Passw") == ["Password reset"]  # substring-ish
    assert await _subjects(h, "Welc") == ["Welcome aboard"]
    assert await _subjects(h, '"welcome aboard"') == ["Welcome aboard"]
    assert await _subjects(h, "to:alice@mailharness.test") == ["Welcome aboard", "Password reset"]
    assert await _subjects(h, "from:billing@example.com") == ["Invoice 7"]
    assert await _subjects(h, "from:shop.example") == ["Weekly news"]  # a domain
    assert await _subjects(h, "cc:audit@example.com") == ["Invoice 7"]
    assert await _subjects(h, "bcc:dan@mailharness.test") == ["Weekly news"]
    assert await _subjects(h, "has:attachment") == ["Invoice 7"]
    assert await _subjects(h, "has:attachments") == ["Invoice 7"]
    assert await _subjects(h, "message-id:Invoice.7@example.com") == ["Invoice 7"]
    assert await _subjects(h, "to:alice@mailharness.test -reset") == ["Welcome aboard"]
    assert await _subjects(h, "to:alice@mailharness.test !subject:Welcome") == ["Password reset"]
    assert await _subjects(h, "larger:100k") == []
    assert len(await _subjects(h, "smaller:100k")) == 4
    assert await _subjects(h, "123456") == ["Password reset"]

    # Read flags.
    assert await _subjects(h, "is:read") == []
    opened = (await h.http.get(f"{API}/message/latest", params={"query": "subject:Invoice"})).json()
    assert opened["Subject"] == "Invoice 7"
    assert await _subjects(h, "is:read") == ["Invoice 7"]
    assert "Invoice 7" not in await _subjects(h, "is:unread")
    ok = await h.http.put(f"{API}/messages", json={"Search": "from:shop.example", "Read": True})
    assert ok.status_code == 200
    assert await _subjects(h, "is:read") == ["Weekly news", "Invoice 7"]

    # Dates, with tz for date-only values.
    today = datetime.now(UTC).date()
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert len(await _subjects(h, f"after:{today.isoformat()}")) == 4
    assert await _subjects(h, f"after:{tomorrow}") == []
    assert len(await _subjects(h, f"before:{tomorrow}", tz="UTC")) == 4
    # Midnight of tomorrow at UTC+14 is 10:00 UTC today: which side the mail is on
    # depends on the hour, so compute it from the received times.
    boundary = datetime.combine(
        today + timedelta(days=1), datetime.min.time(), ZoneInfo("Pacific/Kiritimati")
    )
    created = [
        datetime.fromisoformat(m["Created"].replace("Z", "+00:00"))
        for m in (await h.http.get(f"{API}/messages")).json()["messages"]
    ]
    expected = sum(c < boundary for c in created)
    found = await _subjects(h, f"before:{tomorrow}", tz="Pacific/Kiritimati")
    assert len(found) == expected

    # Queries the service cannot read are 400 (text), not "everything".
    for bad in ['subject:"unterminated', "is:tagged", "after:someday"]:
        resp = await h.http.get(f"{API}/search", params={"query": bad})
        assert resp.status_code == 400, (bad, resp.text)
    bad_tz = await h.http.get(f"{API}/search", params={"query": "x", "tz": "Mars/Base"})
    assert bad_tz.status_code == 400

    # Delete by search with the same syntax.
    gone = await h.http.delete(f"{API}/search", params={"query": "to:alice@mailharness.test"})
    assert gone.status_code == 200
    listed = (await h.http.get(f"{API}/messages")).json()
    assert [m["Subject"] for m in listed["messages"]] == ["Weekly news", "Invoice 7"]
    refused = await h.http.delete(f"{API}/search", params={"query": "is:tagged"})
    assert refused.status_code == 400
    assert (await h.http.get(f"{API}/messages")).json()["total"] == 2
