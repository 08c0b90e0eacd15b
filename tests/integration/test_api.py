"""Inbox and message endpoints: CRUD, pagination, search, and precise errors."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import Harness, simple_mail

UNKNOWN = "00000000-0000-4000-8000-000000000000"


def assert_error(resp: Any, status: int, code: str) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) >= {"error", "detail"}, body
    assert body["error"] == code, body
    assert isinstance(body["detail"], str) and body["detail"]


async def test_create_inbox_forms(harness: Harness) -> None:
    random_box = await harness.create_inbox()
    local, _, domain = random_box["address"].partition("@")
    assert domain == "mailharness.test" and len(local) >= 16
    full = await harness.create_inbox(address="QA@Example.COM", name="QA", tags=["ci", "qa"])
    assert full["address"] == "qa@example.com"
    assert full["name"] == "QA" and full["tags"] == ["ci", "qa"]
    expiring = await harness.create_inbox(expires_in=3600)
    assert expiring["expires_at"] is not None and expiring["expires_at"].endswith("Z")
    resp = await harness.http.post("/api/v1/inboxes")  # no body at all
    assert resp.status_code == 201


async def test_create_inbox_errors(harness: Harness) -> None:
    await harness.create_inbox(address="taken")
    assert_error(
        await harness.http.post("/api/v1/inboxes", json={"address": "taken"}), 409, "conflict"
    )
    assert_error(
        await harness.http.post("/api/v1/inboxes", json={"address": "TAKEN@mailharness.test"}),
        409,
        "conflict",
    )
    for bad in ("not an address", "a@@b", "@x.org", "x@", "a b@c.d"):
        resp = await harness.http.post("/api/v1/inboxes", json={"address": bad})
        assert_error(resp, 422, "invalid_request")
    assert_error(
        await harness.http.post(
            "/api/v1/inboxes", content=b"{not json", headers={"content-type": "application/json"}
        ),
        400,
        "invalid_json",
    )
    assert_error(
        await harness.http.post("/api/v1/inboxes", json={"expires_in": -5}), 422, "invalid_request"
    )
    assert_error(
        await harness.http.post("/api/v1/inboxes", json={"bogus": 1}), 422, "invalid_request"
    )


async def test_unknown_ids_are_404(harness: Harness) -> None:
    inbox = await harness.create_inbox()
    for path in (
        f"/api/v1/inboxes/{UNKNOWN}",
        "/api/v1/inboxes/not-a-uuid",
        f"/api/v1/inboxes/{UNKNOWN}/messages",
        f"/api/v1/messages/{UNKNOWN}",
        "/api/v1/messages/12",
        f"/api/v1/messages/{UNKNOWN}/raw",
        f"/api/v1/messages/{UNKNOWN}/attachments/{UNKNOWN}",
    ):
        assert_error(await harness.http.get(path), 404, "not_found")
    assert_error(await harness.http.delete(f"/api/v1/inboxes/{UNKNOWN}"), 404, "not_found")
    assert_error(await harness.http.delete(f"/api/v1/messages/{UNKNOWN}"), 404, "not_found")
    assert_error(
        await harness.http.patch(f"/api/v1/messages/{UNKNOWN}", json={"seen": True}),
        404,
        "not_found",
    )
    assert_error(
        await harness.http.get("/api/v1/messages", params={"inbox_id": UNKNOWN}), 404, "not_found"
    )
    await harness.send("a@example.com", [inbox["address"]], simple_mail(to=inbox["address"]))
    msg = (await harness.http.get(f"/api/v1/inboxes/{inbox['id']}/wait")).json()["items"][0]
    assert_error(
        await harness.http.get(f"/api/v1/messages/{msg['id']}/attachments/{UNKNOWN}"),
        404,
        "not_found",
    )


async def test_limits_and_cursors(harness: Harness) -> None:
    inbox = await harness.create_inbox()
    for i in range(7):
        await harness.send(
            "a@example.com", [inbox["address"]], simple_mail(to=inbox["address"], subject=f"m{i}")
        )
    url = f"/api/v1/inboxes/{inbox['id']}/messages"
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await harness.http.get(url, params=params)).json()
        seen += [m["subject"] for m in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"m{i}" for i in range(6, -1, -1)]
    assert pages == 3
    for bad_limit in (0, -1, 501, "x"):
        assert_error(
            await harness.http.get(url, params={"limit": bad_limit}), 422, "invalid_request"
        )
    first = (await harness.http.get(url, params={"limit": 3})).json()
    other_query = await harness.http.get(
        "/api/v1/messages", params={"cursor": first["next_cursor"], "q": "m1"}
    )
    assert_error(other_query, 400, "invalid_cursor")
    assert_error(await harness.http.get(url, params={"cursor": "garbage!!"}), 400, "invalid_cursor")


async def test_inbox_list_tags_and_pages(harness: Harness) -> None:
    made = [await harness.create_inbox(tags=["pager"]) for _ in range(5)]
    await harness.create_inbox(tags=["other"])
    page1 = (await harness.http.get("/api/v1/inboxes", params={"tag": "pager", "limit": 2})).json()
    page2 = (
        await harness.http.get(
            "/api/v1/inboxes", params={"tag": "pager", "limit": 2, "cursor": page1["next_cursor"]}
        )
    ).json()
    page3 = (
        await harness.http.get(
            "/api/v1/inboxes", params={"tag": "pager", "limit": 2, "cursor": page2["next_cursor"]}
        )
    ).json()
    got = [i["id"] for p in (page1, page2, page3) for i in p["items"]]
    assert got == [m["id"] for m in reversed(made)]
    assert page3["next_cursor"] is None


async def test_search_seen_delete(harness: Harness) -> None:
    a = await harness.create_inbox()
    b = await harness.create_inbox()
    await harness.send(
        "shop@example.com",
        [a["address"]],
        simple_mail(to=a["address"], subject="Invoice April", body="pay 10"),
    )
    await harness.send(
        "news@example.com",
        [b["address"]],
        simple_mail(to=b["address"], subject="Newsletter", body="100% off"),
    )
    found = (await harness.http.get("/api/v1/messages", params={"q": "invoice april"})).json()[
        "items"
    ]
    assert [m["subject"] for m in found] == ["Invoice April"]
    found = (await harness.http.get("/api/v1/messages", params={"q": "100%"})).json()["items"]
    assert [m["subject"] for m in found] == ["Newsletter"]
    found = (await harness.http.get("/api/v1/messages", params={"q": "news@example.com"})).json()[
        "items"
    ]
    assert [m["subject"] for m in found] == ["Newsletter"]
    found = (await harness.http.get("/api/v1/messages", params={"q": "_"})).json()["items"]
    assert found == []
    scoped = (await harness.http.get("/api/v1/messages", params={"inbox_id": a["id"]})).json()[
        "items"
    ]
    assert [m["subject"] for m in scoped] == ["Invoice April"]

    msg = scoped[0]
    assert msg["seen"] is False
    patched = (
        await harness.http.patch(f"/api/v1/messages/{msg['id']}", json={"seen": True})
    ).json()
    assert patched["seen"] is True
    unseen = (
        await harness.http.get(f"/api/v1/inboxes/{a['id']}/messages", params={"seen": False})
    ).json()
    assert unseen["items"] == []
    assert_error(
        await harness.http.patch(f"/api/v1/messages/{msg['id']}", json={"seen": "maybe"}),
        422,
        "invalid_request",
    )

    assert (await harness.http.delete(f"/api/v1/messages/{msg['id']}")).status_code == 204
    assert_error(await harness.http.get(f"/api/v1/messages/{msg['id']}"), 404, "not_found")

    await harness.send(
        "news@example.com", [b["address"]], simple_mail(to=b["address"], subject="Second")
    )
    assert (await harness.http.delete(f"/api/v1/inboxes/{b['id']}/messages")).status_code == 204
    assert (await harness.http.get(f"/api/v1/inboxes/{b['id']}")).json()["message_count"] == 0
    assert (await harness.http.delete(f"/api/v1/inboxes/{b['id']}")).status_code == 204
    assert_error(await harness.http.get(f"/api/v1/inboxes/{b['id']}"), 404, "not_found")


async def test_health_and_ready(harness: Harness) -> None:
    assert (await harness.http.get("/healthz")).json() == {"status": "ok"}
    ready = await harness.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"store": "ok", "smtp": "ok"}
    assert_error(await harness.http.get("/api/v1/nothing-here"), 404, "not_found")


async def test_janitor_removes_expired_inboxes_and_their_mail(harness: Harness) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from app.store.models import Inbox
    from app.store.types import utcnow

    keep = await harness.create_inbox(expires_in=3600)
    gone = await harness.create_inbox(expires_in=3600)
    forever = await harness.create_inbox()
    await harness.send("a@example.com", [gone["address"]], simple_mail(to=gone["address"]))
    async with harness.runtime.db.write() as session:
        await session.execute(
            update(Inbox)
            .where(Inbox.id == gone["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert await harness.runtime.janitor.sweep() == 1
    assert_error(await harness.http.get(f"/api/v1/inboxes/{gone['id']}"), 404, "not_found")
    assert (await harness.http.get("/api/v1/messages")).json()["items"] == []
    for inbox in (keep, forever):
        assert (await harness.http.get(f"/api/v1/inboxes/{inbox['id']}")).status_code == 200


def test_http_listener_is_tcp_so_accepted_sockets_get_nodelay() -> None:
    """asyncio sets TCP_NODELAY only when the listener names IPPROTO_TCP; without it a
    kept-alive client waits ~40 ms per response (delayed ACK). Measured in bench/."""
    import socket

    from app.server import bind

    sock = bind("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()


@pytest.mark.parametrize("settings_overrides", [{"retention_max_per_inbox": 3}])
async def test_janitor_keeps_the_newest_messages_per_inbox(harness: Harness) -> None:
    a = await harness.create_inbox()
    b = await harness.create_inbox()
    for i in range(5):
        await harness.send(
            "x@example.com", [a["address"]], simple_mail(to=a["address"], subject=f"a{i}")
        )
    await harness.send("x@example.com", [b["address"]], simple_mail(to=b["address"], subject="b0"))
    await harness.runtime.janitor.sweep()
    kept = (await harness.http.get(f"/api/v1/inboxes/{a['id']}/messages")).json()["items"]
    assert [m["subject"] for m in kept] == ["a4", "a3", "a2"]
    assert (await harness.http.get(f"/api/v1/inboxes/{b['id']}")).json()["message_count"] == 1


@pytest.mark.parametrize("settings_overrides", [{"retention_max_age": 3600}])
async def test_janitor_deletes_messages_past_the_retention_age(harness: Harness) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from app.store.models import Message
    from app.store.types import utcnow

    inbox = await harness.create_inbox()
    for subject in ("old", "new"):
        await harness.send(
            "x@example.com", [inbox["address"]], simple_mail(to=inbox["address"], subject=subject)
        )
    async with harness.runtime.db.write() as session:
        await session.execute(
            update(Message)
            .where(Message.subject == "old")
            .values(received_at=utcnow() - timedelta(hours=2))
        )
    await harness.runtime.janitor.sweep()
    kept = (await harness.http.get(f"/api/v1/inboxes/{inbox['id']}/messages")).json()["items"]
    assert [m["subject"] for m in kept] == ["new"]


async def test_security_headers_and_sandboxed_html(harness: Harness) -> None:
    inbox = await harness.create_inbox()
    raw = (
        b"From: a@example.com\r\nTo: " + inbox["address"].encode() + b"\r\nSubject: html\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>Hi</p><script>alert(1)</script>\r\n"
    )
    await harness.send("a@example.com", [inbox["address"]], raw)
    msg = (await harness.http.get(f"/api/v1/inboxes/{inbox['id']}/wait")).json()["items"][0]
    api = await harness.http.get(f"/api/v1/messages/{msg['id']}")
    assert api.headers["x-content-type-options"] == "nosniff"
    assert api.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in api.headers["content-security-policy"]
    html = await harness.http.get(f"/api/v1/messages/{msg['id']}/html")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    csp = html.headers["content-security-policy"]
    assert "sandbox" in csp and "script-src" not in csp and "default-src 'none'" in csp
    assert html.headers["x-frame-options"] == "SAMEORIGIN"
    assert "access-control-allow-origin" not in api.headers  # CORS off by default
    await harness.send("a@example.com", [inbox["address"]], simple_mail(to=inbox["address"]))
    plain = (await harness.http.get("/api/v1/messages", params={"q": "hi there"})).json()["items"][
        0
    ]
    assert (await harness.http.get(f"/api/v1/messages/{plain['id']}/html")).status_code == 404


@pytest.mark.parametrize("settings_overrides", [{"cors_origins": "https://qa.example"}])
async def test_cors_when_configured(harness: Harness) -> None:
    resp = await harness.http.options(
        "/api/v1/inboxes",
        headers={"Origin": "https://qa.example", "Access-Control-Request-Method": "POST"},
    )
    assert resp.headers["access-control-allow-origin"] == "https://qa.example"
    other = await harness.http.get("/api/v1/inboxes", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
