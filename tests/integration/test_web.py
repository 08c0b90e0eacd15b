"""The web UI over plain HTTP: pages render from the real store, the mail HTML frame is
served sandboxed, forms from another site are refused, and the login cookie works as a
tenant key with the header keeping precedence (browser flows are in tests/browser)."""

from __future__ import annotations

import logging
import re
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from app.api.app import openapi_document
from tests.support import Harness, SseReader, simple_mail

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f0005000201e2276a0c0000000049454e44ae426082"
)


def html_mail(to: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Shop <shop@example.com>"
    msg["To"] = to
    msg["Subject"] = "Welcome aboard"
    msg.set_content("Your code is 482913.")
    msg.add_alternative(
        '<p id="x">Hi</p><img src="cid:logo@shop"><img src="https://tracker.example/p.png">'
        "<script>document.title='pwned'</script>",
        subtype="html",
    )
    msg.get_payload()[1].add_related(PNG, "image", "png", cid="<logo@shop>")
    return msg.as_bytes(policy=SMTP)


async def _message(h: Harness, inbox: dict[str, str]) -> dict[str, str]:
    resp = await h.http.get(f"/api/v1/inboxes/{inbox['id']}/wait", params={"timeout": 10})
    assert resp.status_code == 200, resp.text
    found: dict[str, str] = resp.json()["items"][0]
    return found


async def test_pages_render_from_the_store(harness: Harness) -> None:
    http = harness.http
    inbox = await harness.create_inbox(address="pages", tags=["qa"], name="Pages")
    await harness.send("app@example.com", [inbox["address"]], html_mail(inbox["address"]))
    msg = await _message(harness, inbox)

    root = await http.get("/")
    assert root.status_code == 200
    assert "pages@mailharness.test" in root.text and ">qa<" in root.text
    assert "script-src 'self'" in root.headers["content-security-policy"]
    assert (await http.get("/ui", follow_redirects=True)).url.path == "/ui/"
    assert (await http.get("/ui/?tag=qa")).text.count("pages@mailharness.test") >= 1
    assert "pages@mailharness.test" not in (await http.get("/ui/?tag=other")).text

    page = await http.get(f"/ui/inboxes/{inbox['id']}")
    assert page.status_code == 200 and "Welcome aboard" in page.text
    assert f'data-live-inbox="{inbox["id"]}"' in page.text

    rows = await http.get(f"/ui/inboxes/{inbox['id']}/rows", params={"since": msg["id"]})
    assert rows.status_code == 200 and "data-message-id" not in rows.text
    rows = await http.get(f"/ui/inboxes/{inbox['id']}/rows")
    assert f'data-message-id="{msg["id"]}"' in rows.text

    assert (await http.get(f"/api/v1/messages/{msg['id']}")).json()["seen"] is False
    detail = await http.get(f"/ui/messages/{msg['id']}")
    assert detail.status_code == 200
    assert "482913" in detail.text and "Welcome aboard" in detail.text
    assert (await http.get(f"/api/v1/messages/{msg['id']}")).json()["seen"] is True, (
        "opening a message marks it read"
    )

    search = await http.get("/ui/search", params={"q": "welcome"})
    assert f'data-message-id="{msg["id"]}"' in search.text
    assert "data-message-id" not in (await http.get("/ui/search", params={"q": "zzz"})).text

    status = await http.get("/ui/status")
    assert status.status_code == 200
    assert f"127.0.0.1:{harness.smtp_port}" in status.text
    assert ("SQLite" if harness.runtime.settings.is_sqlite else "PostgreSQL") in status.text

    assert (await http.get("/ui/rules")).status_code == 200
    assert (await http.get(f"/ui/inboxes/{inbox['id']}/sent")).status_code == 200

    missing = await http.get("/ui/inboxes/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]


async def test_mail_html_is_framed_sandboxed(harness: Harness) -> None:
    inbox = await harness.create_inbox(address="frame")
    await harness.send("shop@example.com", [inbox["address"]], html_mail(inbox["address"]))
    msg = await _message(harness, inbox)

    resp = await harness.http.get(f"/ui/messages/{msg['id']}/html")
    assert resp.status_code == 200
    csp = resp.headers["content-security-policy"]
    assert re.search(r"(^|; )sandbox( |;|$)", csp) and "allow-scripts" not in csp
    assert "script-src" not in csp and "default-src 'none'" in csp
    assert "img-src data:;" in csp, "remote images are blocked by default"
    assert resp.headers["x-frame-options"] == "SAMEORIGIN"
    body = resp.text
    assert "data:image/png;base64," in body and "cid:logo@shop" not in body, (
        "inline parts are embedded, so they show without network access"
    )
    assert body.startswith('<base target="_blank">')

    remote = await harness.http.get(f"/ui/messages/{msg['id']}/html", params={"images": "remote"})
    assert "img-src data: http: https:;" in remote.headers["content-security-policy"]
    assert "allow-scripts" not in remote.headers["content-security-policy"]

    page = await harness.http.get(f"/ui/messages/{msg['id']}")
    frame = re.search(r"<iframe[^>]*>", page.text)
    assert frame is not None
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in frame.group(0)
    assert "Load remote images" in page.text

    text_only = await harness.create_inbox(address="plain")
    await harness.send(
        "a@example.com", [text_only["address"]], simple_mail(to=text_only["address"])
    )
    plain = await _message(harness, text_only)
    assert (await harness.http.get(f"/ui/messages/{plain['id']}/html")).status_code == 404


async def test_forms_from_another_site_are_refused(harness: Harness) -> None:
    http = harness.http
    host = harness.base_url.removeprefix("http://")
    for headers in (
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": f"http://{host}"},
    ):
        resp = await http.post("/ui/inboxes", data={"address": "csrf"}, headers=headers)
        assert resp.status_code == 403, headers
    assert (await http.get("/api/v1/inboxes")).json()["items"] == []

    ok = await http.post(
        "/ui/inboxes",
        data={"address": "mine", "tags": "a, b", "expires_in": "3600"},
        headers={"Origin": f"http://{host}", "Sec-Fetch-Site": "same-origin"},
    )
    assert ok.status_code == 303
    [inbox] = (await http.get("/api/v1/inboxes")).json()["items"]
    assert inbox["address"] == "mine@mailharness.test" and inbox["tags"] == ["a", "b"]
    assert inbox["expires_at"] is not None
    assert ok.headers["location"] == f"/ui/inboxes/{inbox['id']}?created=1"

    taken = await http.post("/ui/inboxes", data={"address": "mine"})
    assert taken.status_code == 422 and "taken" in taken.text.lower()


async def test_rules_form_creates_and_deletes(harness: Harness) -> None:
    http = harness.http
    bad = await http.post("/ui/rules", data={"stage": "rcpt", "code": "999"})
    assert bad.status_code == 422 and "code" in bad.text
    made = await http.post(
        "/ui/rules",
        data={
            "stage": "rcpt",
            "recipient": "nobody@mailharness.test",
            "code": "550",
            "enhanced": "5.1.1",
            "text": "No such user",
            "times": "2",
        },
    )
    assert made.status_code == 303
    [rule] = (await http.get("/api/v1/rules")).json()["items"]
    assert rule["reply"] == {"code": 550, "enhanced": "5.1.1", "text": "No such user"}
    assert rule["times"] == 2 and rule["match"]["recipient"] == "nobody@mailharness.test"
    assert "nobody@mailharness.test" in (await http.get("/ui/rules")).text
    assert (await http.post(f"/ui/rules/{rule['id']}/delete")).status_code == 303
    assert (await http.get("/api/v1/rules")).json()["items"] == []


async def test_login_cookie_is_a_tenant_key(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    http = harness.http
    _, alice = await harness.runtime.keys().create("alice")
    _, bob = await harness.runtime.keys().create("bob")
    a_inbox = (
        await http.post("/api/v1/inboxes", json={"address": "alice"}, headers={"X-API-Key": alice})
    ).json()
    b_inbox = (
        await http.post("/api/v1/inboxes", json={"address": "bob"}, headers={"X-API-Key": bob})
    ).json()

    # Keyed mode: the UI sends the browser to the login form; API calls stay 401.
    resp = await http.get(f"/ui/inboxes/{a_inbox['id']}")
    assert resp.status_code == 303
    assert resp.headers["location"] == f"/ui/login?next=%2Fui%2Finboxes%2F{a_inbox['id']}"
    assert (await http.get("/api/v1/inboxes")).status_code == 401

    wrong = await http.post("/ui/login", data={"key": "mhk_wrong", "next": "/"})
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    login = await http.post("/ui/login", data={"key": alice, "next": "//evil.example/x"})
    assert login.status_code == 303 and login.headers["location"] == "/ui/"
    cookie = login.headers["set-cookie"]
    assert cookie.startswith("mailharness_key=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie

    http.cookies.clear()  # the client kept it; send it explicitly from here on
    jar = {"Cookie": f"mailharness_key={alice}"}
    listed = (await http.get("/api/v1/inboxes", headers=jar)).json()["items"]
    assert [i["address"] for i in listed] == ["alice@mailharness.test"]
    page = await http.get("/", headers=jar)
    assert "alice@mailharness.test" in page.text and "bob@mailharness.test" not in page.text
    assert (await http.get(f"/ui/inboxes/{b_inbox['id']}", headers=jar)).status_code == 404

    # A header wins over the cookie, a bad header is not rescued by a good cookie.
    as_bob = await http.get("/api/v1/inboxes", headers={**jar, "X-API-Key": bob})
    assert [i["address"] for i in as_bob.json()["items"]] == ["bob@mailharness.test"]
    bad = await http.get("/api/v1/inboxes", headers={**jar, "Authorization": "Bearer nope"})
    assert bad.status_code == 401

    # A revoked key's cookie stops at once.
    await harness.runtime.keys().revoke("alice")
    assert (await http.get("/ui/", headers=jar)).status_code == 303

    logout = await http.post("/ui/logout", headers={"Cookie": f"mailharness_key={bob}"})
    assert logout.status_code == 303 and 'mailharness_key=""' in logout.headers["set-cookie"]

    server_logs = [r.getMessage() for r in caplog.records if r.name.startswith(("app", "uvicorn"))]
    assert any("/ui/login" in line for line in server_logs)
    for key in (alice, bob):
        assert all(key not in line for line in server_logs), "the server logged a key"


async def test_ui_is_not_part_of_the_api_document() -> None:
    paths = openapi_document()["paths"]
    assert not any(p == "/" or p.startswith("/ui") for p in paths)


async def test_live_view_resumes_from_where_the_page_was_read(harness: Harness) -> None:
    """Mail that arrives after the page was rendered but before its event stream
    connects is still sent: the page gives the stream its starting position."""
    http = harness.http
    inbox = await harness.create_inbox(address="gap")
    await harness.send("a@example.com", [inbox["address"]], simple_mail(to=inbox["address"]))
    page = await http.get(f"/ui/inboxes/{inbox['id']}")
    found = re.search(r'data-since="([^"]+)"', page.text)
    assert found is not None
    await harness.send(
        "a@example.com", [inbox["address"]], simple_mail(to=inbox["address"], subject="In the gap")
    )
    params = {"inbox_id": inbox["id"], "types": "message.received", "since": found.group(1)}
    async with http.stream("GET", "/api/v1/events", params=params) as resp:
        assert resp.status_code == 200
        reader = SseReader(resp)
        block = await reader.block()
        while block.event is None:  # the opening comment
            block = await reader.block()
        assert block.event == "message.received"
        assert block.data["subject"] == "In the gap"
