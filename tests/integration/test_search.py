"""Structured search (GET /api/v1/messages?q=) and delete by query, on both stores,
with mail received over real SMTP."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select, text

from app.config import DEFAULT_TENANT_ID
from app.runtime import Runtime
from app.server import Services
from app.store.db import create_engine
from app.store.models import MessageAddress, MessageRaw
from tests.conftest import TABLES_TO_EMPTY, make_settings
from tests.support import Harness, simple_mail


def mail(
    *,
    subject: str,
    body: str | None = "",
    sender: str = "App <app@example.com>",
    to: str = "someone@mailharness.test",
    cc: str | None = None,
    bcc: str | None = None,
    reply_to: str | None = None,
    html: str | None = None,
    attachment: tuple[str, bytes] | None = None,
    message_id: str | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    if bcc:
        msg["Bcc"] = bcc
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Subject"] = subject
    if message_id:
        msg["Message-ID"] = message_id
    if body is not None:
        msg.set_content(body)
    if html is not None:
        if body is None:
            msg.set_content(html, subtype="html")
        else:
            msg.add_alternative(html, subtype="html")
    if attachment:
        name, data = attachment
        msg.add_attachment(data, maintype="application", subtype="pdf", filename=name)
    return msg.as_bytes()


@dataclass
class Corpus:
    alpha: dict[str, Any]
    beta: dict[str, Any]
    ids: dict[str, str]  # name -> message id

    def names(self, items: list[dict[str, Any]]) -> list[str]:
        by_id = {v: k for k, v in self.ids.items()}
        return [by_id[m["id"]] for m in items]


async def seed(h: Harness) -> Corpus:
    """Six messages with distinct fields, sent in this order (so newest first is the
    reverse)."""
    alpha = await h.create_inbox(address="alpha")
    beta = await h.create_inbox(address="beta")
    a, b = alpha["address"], beta["address"]
    sends: list[tuple[str, str, list[str], bytes]] = [
        (
            "reset",
            "shop@example.com",
            [a],
            mail(
                subject="Reset your password",
                sender="Shop Team <shop@example.com>",
                to=a,
                body="Click https://shop.example.com/reset?t=1 to reset your password. "
                "Code 123456.",
                message_id="<Reset.1@shop.example.com>",
            ),
        ),
        (
            "invoice",
            "billing@example.org",
            [a],
            mail(
                subject="Invoice April",
                sender="billing@example.org",
                to=a,
                cc="Big Boss <boss@corp.test>",
                body="Please pay the invoice.",
                attachment=("invoice-april.pdf", b"%PDF-1.4 " + b"x" * 4000),
            ),
        ),
        (
            "news",
            "news@example.com",
            [b],
            mail(
                subject="Newsletter: password tips",
                sender="news@example.com",
                to=b,
                reply_to="replies@example.com",
                body="Never share the reset codes of your password.",
            ),
        ),
        (
            "ba",
            "bob@x.test",
            [b],
            mail(subject="For ba", sender="Bob Builder <bob@x.test>", to="ba@x.test", body="hi"),
        ),
        (
            "a",
            "bob@x.test",
            [a],
            mail(subject="For a", sender="Bob Builder <bob@x.test>", to="a@x.test", body="hi"),
        ),
        (
            "cafe",
            "chef@example.net",
            [a],
            mail(
                subject="Menü",
                sender="chef@example.net",
                to=a,
                body=None,
                html="<p>Our <b>café</b> opens at 10am</p><style>.x{color:red}</style>",
                bcc="secret-watcher@example.net",
            ),
        ),
    ]
    ids: dict[str, str] = {}
    for name, sender, rcpts, data in sends:
        reply = await h.send(sender, rcpts, data)
        assert reply.code == 250, reply
        submission = reply.message.split()[-1]
        found = (await h.http.get("/api/v1/messages", params={"submission_id": submission})).json()
        [item] = found["items"]
        ids[name] = item["id"]
    return Corpus(alpha=alpha, beta=beta, ids=ids)


async def search(h: Harness, q: str, **params: Any) -> list[dict[str, Any]]:
    resp = await h.http.get("/api/v1/messages", params={"q": q, **params})
    assert resp.status_code == 200, (q, resp.text)
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


async def names(h: Harness, c: Corpus, q: str, **params: Any) -> list[str]:
    return c.names(await search(h, q, **params))


ALL = ["cafe", "a", "ba", "news", "invoice", "reset"]


async def test_words_phrases_prefixes_and_subject(harness: Harness) -> None:
    h = harness
    c = await seed(h)
    assert await names(h, c, "") == ALL
    assert await names(h, c, "password reset") == ["news", "reset"]  # all words, any order
    assert await names(h, c, "PASSWORD") == ["news", "reset"]
    assert await names(h, c, '"reset your password"') == ["reset"]  # adjacent, in order
    assert await names(h, c, '"password your reset"') == []
    assert await names(h, c, "passw*") == ["news", "reset"]
    assert await names(h, c, "passw") == []  # whole words, not substrings
    assert await names(h, c, "subject:password") == ["news", "reset"]
    assert await names(h, c, 'subject:"reset your"') == ["reset"]
    assert await names(h, c, "subject:pay") == []  # only in the body
    assert await names(h, c, "pay") == ["invoice"]
    assert await names(h, c, "subject:inv*") == ["invoice"]
    # Addresses, names, attachment names and links are words too.
    assert await names(h, c, "news@example.com") == ["news"]
    assert await names(h, c, '"big boss"') == ["invoice"]
    assert await names(h, c, "invoice-april.pdf") == ["invoice"]
    assert await names(h, c, "https://shop.example.com/reset") == ["reset"]
    assert await names(h, c, "123456") == ["reset"]
    # HTML-only mail is searched by its visible text (not its markup or style).
    assert await names(h, c, "café 10am") == ["cafe"]
    assert await names(h, c, "cafe") == []  # diacritics are kept, on both stores
    assert await names(h, c, "color") == []
    assert await names(h, c, "subject:menü") == ["cafe"]
    # Unknown fields are plain words; punctuation-only words match nothing.
    assert await names(h, c, "tag:urgent") == []
    assert await names(h, c, "_") == []
    assert await names(h, c, "-_") == ALL


async def test_exact_address_terms(harness: Harness) -> None:
    h = harness
    c = await seed(h)
    assert await names(h, c, "from:shop@example.com") == ["reset"]
    assert await names(h, c, "FROM:<SHOP@Example.COM>") == ["reset"]
    assert await names(h, c, "from:hop@example.com") == []  # never a substring
    assert await names(h, c, "from:@example.com") == ["news", "reset"]
    assert await names(h, c, "from:@example.org") == ["invoice"]
    assert await names(h, c, "from:@com") == []  # a domain is exact too
    assert await names(h, c, "to:a@x.test") == ["a"]  # not ba@x.test
    assert await names(h, c, "to:ba@x.test") == ["ba"]
    assert await names(h, c, "to:@x.test") == ["a", "ba"]
    assert await names(h, c, f"to:{c.alpha['address']}") == ["cafe", "invoice", "reset"]
    assert await names(h, c, "cc:boss@corp.test") == ["invoice"]
    assert await names(h, c, "reply-to:replies@example.com") == ["news"]
    assert await names(h, c, "bcc:secret-watcher@example.net") == ["cafe"]
    # Envelope recipients missing from the headers count as Bcc.
    assert await names(h, c, f"bcc:{c.beta['address']}") == ["ba"]
    assert await names(h, c, "addressed:boss@corp.test") == ["invoice"]
    assert await names(h, c, "addressed:@x.test") == ["a", "ba"]
    # Without "@": the local part or the domain exactly, or display-name words.
    assert await names(h, c, "from:shop") == ["reset"]
    assert await names(h, c, "from:sho") == []
    assert await names(h, c, "from:x.test") == ["a", "ba"]
    assert await names(h, c, 'from:"Bob Builder"') == ["a", "ba"]
    assert await names(h, c, "from:team") == ["reset"]
    assert await names(h, c, "cc:boss") == ["invoice"]


async def test_negation_flags_sizes_ids_and_inbox(harness: Harness) -> None:
    h = harness
    c = await seed(h)
    assert await names(h, c, "-from:@example.com") == ["cafe", "a", "ba", "invoice"]
    assert await names(h, c, "password -newsletter") == ["reset"]
    assert await names(h, c, "password !newsletter") == ["reset"]
    assert await names(h, c, "password NOT newsletter") == ["reset"]
    assert await names(h, c, 'password -"password tips"') == ["reset"]
    assert await names(h, c, "-subject:password -to:@x.test") == ["cafe", "invoice"]
    assert await names(h, c, "has:attachment") == ["invoice"]
    assert await names(h, c, "has:attachments") == ["invoice"]
    assert await names(h, c, "-has:attachment from:@example.org") == []

    assert await names(h, c, "is:read") == []
    patched = await h.http.patch(f"/api/v1/messages/{c.ids['news']}", json={"seen": True})
    assert patched.status_code == 200
    assert await names(h, c, "is:read") == ["news"]
    assert await names(h, c, "is:seen password") == ["news"]
    assert await names(h, c, "is:unread password") == ["reset"]
    assert await names(h, c, "-is:unseen") == ["news"]

    invoice = (await h.http.get(f"/api/v1/messages/{c.ids['invoice']}")).json()
    assert invoice["size"] > 4000
    assert await names(h, c, f"larger:{invoice['size'] - 1}") == ["invoice"]
    assert await names(h, c, f"larger:{invoice['size']}") == []
    assert await names(h, c, "larger:3k") == ["invoice"]
    assert "invoice" not in await names(h, c, "smaller:3k")
    assert len(await names(h, c, "smaller:3k")) == 5

    assert await names(h, c, "message-id:<Reset.1@shop.example.com>") == ["reset"]
    assert await names(h, c, "message-id:reset.1@SHOP.example.com") == ["reset"]
    assert await names(h, c, "message-id:reset.1@shop") == []
    assert len(await names(h, c, "-message-id:reset.1@shop.example.com")) == 5

    assert await names(h, c, f"inbox:{c.beta['id']}") == ["ba", "news"]
    assert await names(h, c, f"inbox:{c.beta['address'].upper()}") == ["ba", "news"]
    assert await names(h, c, "inbox:nobody@mailharness.test") == []
    assert await names(h, c, f"-inbox:{c.alpha['id']} password") == ["news"]
    # The inbox_id parameter still works, together with q.
    assert await names(h, c, "password", inbox_id=c.alpha["id"]) == ["reset"]
    combined = f"from:@example.com password -subject:newsletter to:{c.alpha['address']}"
    assert await names(h, c, combined) == ["reset"]
    # Counting (for list envelopes that report totals) agrees with the search.
    mailbox = h.runtime.mailbox(DEFAULT_TENANT_ID)
    assert await mailbox.count_messages() == 6
    assert await mailbox.count_messages(q="password") == 2
    assert await mailbox.count_messages(q="password", seen=False) == 1
    assert await mailbox.count_messages(q="-password", inbox_id=c.beta["id"]) == 1
    assert await mailbox.count_messages(q=combined) == 1


async def test_dates(harness: Harness) -> None:
    h = harness
    c = await seed(h)
    items = {m["id"]: m for m in await search(h, "")}
    news_at = items[c.ids["news"]]["received_at"]
    assert news_at.endswith("Z")
    assert await names(h, c, f"after:{news_at}") == ["cafe", "a", "ba", "news"]
    assert await names(h, c, f"before:{news_at}") == ["invoice", "reset"]
    assert await names(h, c, f"-before:{news_at}") == ["cafe", "a", "ba", "news"]
    received = datetime.fromisoformat(news_at)
    today = received.date()
    assert await names(h, c, f"after:{today.isoformat()}") == ALL
    assert await names(h, c, f"before:{today.isoformat()}") == []
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert await names(h, c, f"before:{tomorrow}") == ALL
    assert await names(h, c, f"after:{tomorrow}") == []
    # A time without a zone is UTC, or in ``tz`` when given (Etc/GMT-14 is UTC+14).
    later = (received + timedelta(hours=1)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    assert await names(h, c, f"before:{later}") == ALL  # zone-less: UTC
    assert await names(h, c, f"before:{later}", tz="Etc/GMT-14") == []  # 14 h earlier


async def test_pagination_over_search_results(harness: Harness) -> None:
    h = harness
    inbox = await h.create_inbox(address="pager")
    for i in range(7):
        await h.send(
            "app@example.com",
            [inbox["address"]],
            simple_mail(to=inbox["address"], subject=f"batch {i}", body="report"),
        )
        await h.send(
            "app@example.com",
            [inbox["address"]],
            simple_mail(to=inbox["address"], subject=f"other {i}", body="noise"),
        )
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"q": "subject:batch report", "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await h.http.get("/api/v1/messages", params=params)).json()
        seen += [m["subject"] for m in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"batch {i}" for i in range(6, -1, -1)]
    assert pages == 3
    first = (await h.http.get("/api/v1/messages", params={"q": "report", "limit": 3})).json()
    replay = await h.http.get(
        "/api/v1/messages", params={"q": "noise", "cursor": first["next_cursor"]}
    )
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_cursor"


async def test_bad_queries_answer_400(harness: Harness) -> None:
    h = harness
    await seed(h)
    for q in (
        '"unterminated',
        "after:yesterday",
        "before:2026-02-30",
        "is:starred",
        "has:inline",
        "larger:huge",
        "from:",
        "message-id:<>",
        "from:a\x00@b.test",
    ):
        for method in ("GET", "DELETE"):
            resp = await h.http.request(method, "/api/v1/messages", params={"q": q})
            assert resp.status_code == 400, (method, q, resp.text)
            body = resp.json()
            assert body["error"] == "invalid_query" and body["detail"], body
    resp = await h.http.get("/api/v1/messages", params={"q": "x", "tz": "Mars/Olympus"})
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_query"
    # Nothing was deleted by the refused requests.
    assert len(await search(h, "")) == 6


async def _counts(h: Harness) -> dict[str, int]:
    async with h.runtime.db.read() as session:
        raw = (await session.execute(select(func.count()).select_from(MessageRaw))).scalar()
        addr = (await session.execute(select(func.count()).select_from(MessageAddress))).scalar()
        out = {"raw": int(raw or 0), "addresses": int(addr or 0)}
        if h.runtime.db.is_sqlite:
            # The external-content FTS index agrees with the message table.
            await session.execute(
                text("INSERT INTO message_fts(message_fts) VALUES ('integrity-check')")
            )
            fts = await session.execute(
                text("SELECT count(*) FROM message_fts WHERE message_fts MATCH 'password'")
            )
            out["fts_password"] = int(fts.scalar() or 0)
        return out


async def test_delete_by_query(harness: Harness) -> None:
    h = harness
    c = await seed(h)
    before = await _counts(h)
    assert before["raw"] == 6 and before["addresses"] > 6
    if h.runtime.db.is_sqlite:
        assert before["fts_password"] == 2

    refused = await h.http.delete("/api/v1/messages")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_query"
    refused = await h.http.delete("/api/v1/messages", params={"q": "  "})
    assert refused.status_code == 400

    resp = await h.http.delete("/api/v1/messages", params={"q": "password -is:read"})
    assert resp.status_code == 200 and resp.json() == {"deleted": 2}
    assert await names(h, c, "") == ["cafe", "a", "ba", "invoice"]
    assert (await h.http.get(f"/api/v1/messages/{c.ids['reset']}/raw")).status_code == 404
    after = await _counts(h)
    assert after["raw"] == 4 and after["addresses"] < before["addresses"]
    if h.runtime.db.is_sqlite:
        assert after["fts_password"] == 0

    again = await h.http.delete("/api/v1/messages", params={"q": "password"})
    assert again.json() == {"deleted": 0}
    # A submission id that is not a UUID matches nothing (and never reaches the store).
    for bogus in ("nope", "x\x00y"):
        listed = await h.http.get("/api/v1/messages", params={"submission_id": bogus})
        assert listed.status_code == 200 and listed.json()["items"] == []
        gone = await h.http.delete("/api/v1/messages", params={"submission_id": bogus})
        assert gone.json() == {"deleted": 0}
    # Scoped to an inbox; an empty q with inbox_id empties that inbox only.
    scoped = await h.http.delete(
        "/api/v1/messages", params={"q": "from:bob@x.test", "inbox_id": c.beta["id"]}
    )
    assert scoped.json() == {"deleted": 1}
    assert await names(h, c, "from:bob@x.test") == ["a"]
    emptied = await h.http.delete("/api/v1/messages", params={"inbox_id": c.alpha["id"]})
    assert emptied.json() == {"deleted": 3}
    assert await names(h, c, "") == []
    final = await _counts(h)
    assert final["raw"] == 0 and final["addresses"] == 0
    missing = await h.http.delete(
        "/api/v1/messages", params={"inbox_id": "00000000-0000-4000-8000-000000000000"}
    )
    assert missing.status_code == 404


async def test_inbox_deletion_and_new_mail_keep_the_index_consistent(harness: Harness) -> None:
    h = harness
    c = await seed(h)
    assert (await h.http.delete(f"/api/v1/inboxes/{c.beta['id']}")).status_code == 204
    assert await names(h, c, "password") == ["reset"]
    counts = await _counts(h)
    assert counts["raw"] == 4
    # Mail arriving later (several at once, which the ingest may batch) is indexed.
    box = await h.create_inbox(address="late")
    await asyncio.gather(
        *(
            h.send(
                "late@example.com",
                [box["address"]],
                simple_mail(
                    to=box["address"], subject=f"password late {i}", sender="late@example.com"
                ),
            )
            for i in range(5)
        )
    )
    found = await search(h, "from:late@example.com subject:password")
    assert len(found) == 5
    assert (await _counts(h))["raw"] == 9


async def test_locally_delivered_mail_is_indexed(harness: Harness) -> None:
    h = harness
    sender = await h.create_inbox(address="sender")
    target = await h.create_inbox(address="target")
    sent = await h.http.post(
        f"/api/v1/inboxes/{sender['id']}/send",
        json={"to": [target["address"]], "subject": "Local hello", "text": "delivered inside"},
    )
    assert sent.status_code == 202, sent.text
    waited = await h.http.get(
        f"/api/v1/inboxes/{target['id']}/wait", params={"timeout": 30, "subject": "Local"}
    )
    assert waited.status_code == 200
    found = await search(h, f'from:{sender["address"]} "delivered inside"')
    assert [m["id"] for m in found] == [waited.json()["items"][0]["id"]]


async def test_search_and_delete_are_tenant_scoped(harness: Harness) -> None:
    h = harness
    a = {"X-API-Key": (await h.runtime.keys().create("search-a"))[1]}
    b = {"X-API-Key": (await h.runtime.keys().create("search-b"))[1]}
    boxes = {}
    for who, headers in (("a", a), ("b", b)):
        resp = await h.http.post("/api/v1/inboxes", json={"address": f"t-{who}"}, headers=headers)
        boxes[who] = resp.json()
        address = boxes[who]["address"]
        await h.send(
            "app@example.com",
            [address],
            simple_mail(to=address, subject="Secret plans", body=f"for {who}"),
        )

    async def found(headers: dict[str, str], q: str) -> list[str]:
        resp = await h.http.get("/api/v1/messages", params={"q": q}, headers=headers)
        assert resp.status_code == 200
        return [m["inbox_id"] for m in resp.json()["items"]]

    assert await found(a, "secret plans") == [boxes["a"]["id"]]
    assert await found(b, "secret plans") == [boxes["b"]["id"]]
    assert await found(b, f"inbox:{boxes['a']['id']}") == []
    assert await found(b, f"inbox:{boxes['a']['address']}") == []
    assert await found(b, f"to:{boxes['a']['address']}") == []
    assert (await h.http.get("/api/v1/messages", params={"q": "x"})).status_code == 401

    # B deletes "everything secret": only B's own message goes.
    resp = await h.http.delete("/api/v1/messages", params={"q": "secret"}, headers=b)
    assert resp.json() == {"deleted": 1}
    resp = await h.http.delete(
        "/api/v1/messages", params={"q": f"to:{boxes['a']['address']}"}, headers=b
    )
    assert resp.json() == {"deleted": 0}
    resp = await h.http.delete("/api/v1/messages", params={"inbox_id": boxes["a"]["id"]}, headers=b)
    assert resp.status_code == 404
    assert await found(a, "secret plans") == [boxes["a"]["id"]]
    assert await found(b, "secret plans") == []


AGREEMENT_MAILS = [
    mail(subject="Ünïcödé Grüße", body="Привет мир 你好世界 naïve façade", sender="x@ü.example"),
    mail(subject="Don't panic", body="it's fine; e-mail co-operation state-of-the-art v1.2.3"),
    mail(subject="Numbers", body="Total: 1,234.56 EUR on 2026-11-28 at 10:30; id 0x1f 1e5 10am"),
    mail(subject="alpha omega", body="first words here", sender="Omega Shop <os@shop.test>"),
    mail(subject="Under_score snake_case", body="CamelCase MiXeD UPPER lower ÀÉÎ"),
    mail(subject="Links", body="See https://example.com/a/b?c=d#e and mailto:x@y.test", html="x"),
    mail(subject="Long", body=" ".join(f"w{i}" for i in range(3000)) + " tail end"),
]
AGREEMENT_QUERIES = [
    "grüße",
    "GRÜSSE",
    "subject:grusse",
    "привет",
    "мир",
    "你好世界",
    "naïve",
    "naive",
    "façade",
    "don't",
    "don",
    '"it s fine"',
    "e-mail",
    '"co operation"',
    "state-of-the-art",
    "v1.2.3",
    "1,234.56",
    "1234",
    "2026-11-28",
    "10:30",
    "0x1f",
    "1e5",
    "10am",
    '"omega omega"',
    '"omega shop"',
    'subject:"omega shop"',
    "subject:omega -from:@shop.test",
    "from:@ü.example",
    "from:x@xn--tda.example",
    "under_score",
    "snake_case",
    "camelcase",
    "àéî",
    "https://example.com/a/b?c=d#e",
    "mailto:x@y.test",
    "w2999 tail",
    '"w2999 tail end"',
    "w29*",
    "subject:ü*",
    "-w1 -links",
    "_ -",
]


async def test_both_stores_give_the_same_answers(
    pg_url: str, sqlite_template: Path, tmp_path: Path
) -> None:
    """The same mail and queries on a SQLite file and on Postgres: the same results,
    including scripts, diacritics, punctuation, phrases near field edges, prefixes."""
    lite = tmp_path / "agree.db"
    shutil.copy(sqlite_template, lite)
    answers: dict[str, list[list[str]]] = {}
    try:
        for store, url in (("sqlite", f"sqlite+aiosqlite:///{lite}"), ("postgres", pg_url)):
            runtime = Runtime.build(make_settings(url, tmp_path / store))
            services = Services(runtime)
            await services.start()
            try:
                base = f"http://127.0.0.1:{services.http_port}"
                async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                    h = Harness(runtime, services, client, base, "127.0.0.1", services.smtp_port)
                    for data in AGREEMENT_MAILS:
                        assert (await h.send("s@example.com", ["agree@x.test"], data)).code == 250
                    answers[store] = [
                        sorted(m["subject"] for m in await search(h, q, limit=500))
                        for q in AGREEMENT_QUERIES
                    ]
            finally:
                await services.stop()
    finally:
        engine = create_engine(pg_url, pool_size=1)
        async with engine.begin() as conn:
            await conn.execute(
                text(f"TRUNCATE {', '.join(TABLES_TO_EMPTY)} RESTART IDENTITY CASCADE")
            )
        await engine.dispose()
    disagreements = [
        (q, lite_answer, pg_answer)
        for q, lite_answer, pg_answer in zip(
            AGREEMENT_QUERIES, answers["sqlite"], answers["postgres"], strict=True
        )
        if lite_answer != pg_answer
    ]
    assert disagreements == []
    matched = sum(1 for a in answers["sqlite"] if a)
    assert matched >= 25, list(zip(AGREEMENT_QUERIES, answers["sqlite"], strict=True))
