"""The MTA end to end: send API, durable queue, retries, bounces, DSNs, held mail,
relay rules and release, against real remote SMTP servers started on port 0."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest

from app.mail import parse_message
from tests.support import Harness, RemoteHandler, RemoteServer, simple_mail, start_remote


@pytest.fixture
async def remote() -> AsyncIterator[RemoteServer]:
    server = await start_remote()
    yield server
    server.server.close()


@pytest.fixture
def settings_overrides(remote: RemoteServer) -> dict[str, Any]:
    return {
        "relay_url": f"smtp://127.0.0.1:{remote.port}",
        "retry_min_backoff": 0.2,
        "retry_max_backoff": 2.0,
        "relay_timeout": 5.0,
        "worker_poll_interval": 0.5,
    }


async def _send(h: Harness, inbox: dict[str, Any], **body: Any) -> dict[str, Any]:
    payload = {"subject": "Hello", "text": "Body text", **body}
    resp = await h.http.post(f"/api/v1/inboxes/{inbox['id']}/send", json=payload)
    assert resp.status_code == 202, resp.text
    data: dict[str, Any] = resp.json()
    return data


async def _wait(
    h: Harness, delivery_id: str, state: str = "final", timeout: float = 20
) -> dict[str, Any]:
    resp = await h.http.get(
        f"/api/v1/deliveries/{delivery_id}/wait", params={"state": state, "timeout": timeout}
    )
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


async def test_send_to_remote_is_delivered_with_the_reply_recorded(
    harness: Harness, remote: RemoteServer
) -> None:
    sender = await harness.create_inbox(address="shop", name="Shop")
    sent = await _send(harness, sender, to=["customer@example.com"], html="<p>Hi</p>")
    assert sent["message_id"].startswith("<") and sent["message_id"].endswith("@mailharness.test>")
    [queued] = sent["deliveries"]
    assert queued["state"] == "queued" and queued["recipient"] == "customer@example.com"
    assert [e["type"] for e in queued["events"]] == ["queued"]

    done = await _wait(harness, queued["id"], "delivered")
    assert done["attempts"] == 1
    assert done["last_response"] == {
        "code": 250,
        "enhanced": "2.0.0",
        "text": "Ok: remote accepted",
        "remote": f"127.0.0.1:{remote.port}",
    }
    assert [e["type"] for e in done["events"]] == ["queued", "attempt", "delivered"]
    assert (
        done["events"][1]["code"] == 250
        and done["events"][1]["remote"] == f"127.0.0.1:{remote.port}"
    )
    [got] = remote.handler.received
    assert got.mail_from == "shop@mailharness.test"
    assert got.rcpt_tos == ["customer@example.com"]
    parsed = parse_message(got.content)
    assert parsed.subject == "Hello" and parsed.from_ is not None
    assert parsed.from_.name == "Shop" and parsed.text and "Body text" in parsed.text
    assert parsed.message_id == sent["message_id"]

    # Sent mail is apart from received mail.
    assert (await harness.http.get(f"/api/v1/inboxes/{sender['id']}/messages")).json()[
        "items"
    ] == []
    listed = (await harness.http.get(f"/api/v1/inboxes/{sender['id']}/sent")).json()["items"]
    assert [o["id"] for o in listed] == [sent["id"]]
    outbound = (await harness.http.get(f"/api/v1/outbound/{sent['id']}")).json()
    assert outbound["deliveries"][0]["state"] == "delivered"
    assert outbound["inbox_id"] == sender["id"]


async def test_local_recipients_are_delivered_into_their_inbox(harness: Harness) -> None:
    sender = await harness.create_inbox()
    target = await harness.create_inbox(address="local-target")
    sent = await _send(
        harness,
        sender,
        to=[target["address"]],
        subject="Local hop",
        bcc=["hidden@mailharness.test"],
    )
    states = [await _wait(harness, d["id"], "delivered") for d in sent["deliveries"]]
    assert {d["recipient"] for d in states} == {target["address"], "hidden@mailharness.test"}
    assert all(d["last_response"]["code"] == 250 for d in states)
    msg = (await harness.http.get(f"/api/v1/inboxes/{target['id']}/wait")).json()["items"][0]
    assert msg["subject"] == "Local hop"
    assert msg["submission_id"] == sent["id"]
    assert "hidden@mailharness.test" not in str(msg["headers"])
    # The bcc recipient got its own inbox (catch-all) and sees itself as bcc.
    boxes = (await harness.http.get("/api/v1/inboxes")).json()["items"]
    hidden = next(b for b in boxes if b["address"] == "hidden@mailharness.test")
    hidden_msg = (await harness.http.get(f"/api/v1/inboxes/{hidden['id']}/wait")).json()["items"][0]
    assert {"name": None, "address": "hidden@mailharness.test"} in hidden_msg["bcc"]


async def test_greylisting_defers_twice_then_delivers_with_growing_gaps(
    harness: Harness, remote: RemoteServer
) -> None:
    remote.handler.data_replies = [
        "451 4.7.1 Greylisted, try later",
        "451 4.7.1 Greylisted, try later",
    ]
    sender = await harness.create_inbox()
    sent = await _send(harness, sender, to=["grey@example.com"])
    did = sent["deliveries"][0]["id"]
    deferred = await _wait(harness, did, "deferred")
    assert deferred["last_response"]["code"] == 451
    assert deferred["last_response"]["enhanced"] == "4.7.1"
    assert deferred["next_attempt_at"] is not None
    done = await _wait(harness, did, "delivered")
    assert done["attempts"] == 3
    attempts = [e for e in done["events"] if e["type"] == "attempt"]
    assert [e["code"] for e in attempts] == [451, 451, 250]
    assert [e["type"] for e in done["events"]] == [
        "queued",
        "attempt",
        "deferred",
        "attempt",
        "deferred",
        "attempt",
        "delivered",
    ]
    times = [datetime.fromisoformat(e["at"].replace("Z", "+00:00")) for e in attempts]
    gap1 = (times[1] - times[0]).total_seconds()
    gap2 = (times[2] - times[1]).total_seconds()
    assert gap1 >= 0.2 * 0.9 and gap2 > gap1
    assert len(remote.handler.received) == 1


async def test_split_outcome_in_one_transaction_and_bounce_notice(
    harness: Harness, remote: RemoteServer
) -> None:
    remote.handler.rcpt_replies["nobody@example.com"] = ["550 5.1.1 No such user here"]
    sender = await harness.create_inbox(address="billing")
    sent = await _send(
        harness, sender, to=["nobody@example.com", "somebody@example.com"], subject="Invoice 7"
    )
    by_rcpt = {d["recipient"]: d["id"] for d in sent["deliveries"]}
    bounced = await _wait(harness, by_rcpt["nobody@example.com"])
    delivered = await _wait(harness, by_rcpt["somebody@example.com"])
    assert bounced["state"] == "bounced"
    assert (
        bounced["last_response"]["code"] == 550 and bounced["last_response"]["enhanced"] == "5.1.1"
    )
    assert delivered["state"] == "delivered"
    [got] = remote.handler.received  # one transaction, only the accepted recipient
    assert got.rcpt_tos == ["somebody@example.com"]

    dsn = (
        await harness.http.get(
            f"/api/v1/inboxes/{sender['id']}/wait", params={"timeout": 10, "from": "MAILER-DAEMON"}
        )
    ).json()["items"][0]
    assert dsn["envelope"]["mail_from"] == ""
    raw = (await harness.http.get(f"/api/v1/messages/{dsn['id']}/raw")).content
    assert b"multipart/report" in raw
    assert re.search(rb'report-type="?delivery-status"?', raw)
    assert b"Final-Recipient: rfc822; nobody@example.com" in raw
    assert b"Status: 5.1.1" in raw
    assert b"Subject: Invoice 7" in raw  # the original headers ride along
    wrong = await harness.http.get(
        f"/api/v1/deliveries/{by_rcpt['nobody@example.com']}/wait", params={"state": "delivered"}
    )
    assert wrong.status_code == 409 and wrong.json()["error"] == "state_conflict"


class TestExpiry:
    @pytest.fixture
    def settings_overrides(self, remote: RemoteServer) -> dict[str, Any]:
        return {
            "relay_url": f"smtp://127.0.0.1:{remote.port}",
            "queue_lifetime": 1.0,
            "retry_min_backoff": 0.2,
            "retry_max_backoff": 0.4,
            "worker_poll_interval": 0.5,
        }

    async def test_deferred_mail_expires_after_the_queue_lifetime(
        self, harness: Harness, remote: RemoteServer
    ) -> None:
        remote.handler.data_replies = ["451 4.2.2 Mailbox full, try later"] * 1000
        sender = await harness.create_inbox(address="expiring")
        sent = await _send(harness, sender, to=["far@example.com"])
        done = await _wait(harness, sent["deliveries"][0]["id"], "final", timeout=30)
        assert done["state"] == "expired"
        assert done["attempts"] >= 2
        assert done["last_response"]["code"] == 451
        assert done["events"][-1]["type"] == "expired"
        assert remote.handler.received == []
        dsn = (
            await harness.http.get(
                f"/api/v1/inboxes/{sender['id']}/wait",
                params={"from": "MAILER-DAEMON", "timeout": 10},
            )
        ).json()["items"][0]
        assert "far@example.com" in (dsn["text"] or "")


@pytest.mark.parametrize("settings_overrides", [{}])
async def test_external_recipients_are_held_when_relay_is_off(harness: Harness) -> None:
    sender = await harness.create_inbox()
    sent = await _send(harness, sender, to=["someone@example.org"])
    [held] = sent["deliveries"]
    assert held["state"] == "held" and held["route"] == "held"
    assert [e["type"] for e in held["events"]] == ["queued", "held"]
    assert (await _wait(harness, held["id"], "held"))["state"] == "held"
    listed = (await harness.http.get("/api/v1/deliveries", params={"state": "held"})).json()[
        "items"
    ]
    assert [d["id"] for d in listed] == [held["id"]]


async def test_send_validation(harness: Harness) -> None:
    sender = await harness.create_inbox()
    url = f"/api/v1/inboxes/{sender['id']}/send"

    async def code_of(body: dict[str, Any]) -> tuple[int, str]:
        resp = await harness.http.post(url, json=body)
        return resp.status_code, resp.json().get("error", "")

    assert await code_of({"subject": "x", "text": "y"}) == (422, "invalid_request")
    assert await code_of({"to": ["not an address"], "subject": "x"}) == (422, "invalid_request")
    assert await code_of({"to": ["a@example.com"], "subject": "x\r\nBcc: evil@example.com"}) == (
        422,
        "invalid_request",
    )
    assert await code_of(
        {
            "to": ["a@example.com"],
            "subject": "x",
            "headers": {"X-Test": "ok\r\nBcc: evil@example.com"},
        }
    ) == (422, "invalid_request")
    assert await code_of(
        {"to": ["a@example.com"], "subject": "x", "headers": {"Bad Name": "v"}}
    ) == (422, "invalid_request")
    assert await code_of(
        {
            "to": ["a@example.com"],
            "subject": "x",
            "attachments": [{"filename": "a", "content_base64": "***"}],
        }
    ) == (422, "invalid_request")
    assert await code_of({"to": [f"r{i}@example.com" for i in range(101)], "subject": "x"}) == (
        422,
        "invalid_request",
    )
    resp = await harness.http.post(
        "/api/v1/inboxes/00000000-0000-4000-8000-000000000000/send", json={"to": ["a@example.com"]}
    )
    assert resp.status_code == 404
    assert (await harness.http.get("/api/v1/deliveries")).json()["items"] == []


async def test_delivery_wait_timeout_and_unknown(harness: Harness, remote: RemoteServer) -> None:
    remote.handler.data_replies = ["451 4.3.0 later"] * 50
    sender = await harness.create_inbox()
    sent = await _send(harness, sender, to=["slow@example.com"])
    resp = await harness.http.get(
        f"/api/v1/deliveries/{sent['deliveries'][0]['id']}/wait",
        params={"state": "delivered", "timeout": 0.5},
    )
    assert resp.status_code == 408 and resp.json()["error"] == "timeout"
    resp = await harness.http.get("/api/v1/deliveries/00000000-0000-4000-8000-000000000000/wait")
    assert resp.status_code == 404


async def test_attachments_are_sent_intact(harness: Harness, remote: RemoteServer) -> None:
    import base64

    from app.mail import attachment_payload

    blob = bytes(range(256)) * 40
    sender = await harness.create_inbox()
    sent = await _send(
        harness,
        sender,
        to=["files@example.com"],
        attachments=[
            {
                "filename": "Bericht März.bin",
                "content_type": "application/octet-stream",
                "content_base64": base64.b64encode(blob).decode(),
            }
        ],
    )
    await _wait(harness, sent["deliveries"][0]["id"], "delivered")
    raw = remote.handler.received[0].content
    parsed = parse_message(raw)
    assert [a.filename for a in parsed.attachments] == ["Bericht März.bin"]
    found = attachment_payload(raw, parsed.attachments[0].index)
    assert found is not None and found[1] == blob


async def test_release_resends_a_stored_message_unchanged(
    harness: Harness, remote: RemoteServer
) -> None:
    inbox = await harness.create_inbox()
    raw = simple_mail(to=inbox["address"], subject="Forward me")
    await harness.send("app@example.com", [inbox["address"]], raw)
    msg = (await harness.http.get(f"/api/v1/inboxes/{inbox['id']}/wait")).json()["items"][0]
    resp = await harness.http.post(
        f"/api/v1/messages/{msg['id']}/release", json={"to": ["qa@example.com"]}
    )
    assert resp.status_code == 202, resp.text
    outbound = resp.json()
    assert outbound["source"] == "release"
    await _wait(harness, outbound["deliveries"][0]["id"], "delivered")
    [got] = remote.handler.received
    assert got.content == raw and got.mail_from == "app@example.com"
    bad = await harness.http.post(f"/api/v1/messages/{msg['id']}/release", json={"to": []})
    assert bad.status_code == 422


class TestRelayRules:
    @pytest.fixture
    def settings_overrides(self, remote: RemoteServer) -> dict[str, Any]:
        return {
            "relay_url": f"smtp://127.0.0.1:{remote.port}",
            "relay_match": "*@customer.example",
            "worker_poll_interval": 0.5,
        }

    async def test_matching_recipients_of_smtp_mail_are_relayed(
        self, harness: Harness, remote: RemoteServer
    ) -> None:
        raw = simple_mail(to="buyer@customer.example", subject="Order shipped")
        await harness.send(
            "shop@example.com", ["buyer@customer.example", "other@elsewhere.example"], raw
        )
        deliveries = (await harness.http.get("/api/v1/deliveries")).json()["items"]
        assert [d["recipient"] for d in deliveries] == ["buyer@customer.example"]
        done = await _wait(harness, deliveries[0]["id"], "delivered")
        assert done["route"] == "relay"
        [got] = remote.handler.received
        assert got.content == raw and got.rcpt_tos == ["buyer@customer.example"]
        # ...and the harness kept its own copy as well.
        found = (await harness.http.get("/api/v1/messages", params={"q": "order shipped"})).json()[
            "items"
        ]
        assert len(found) == 2


class StallingRemote(RemoteHandler):
    """Holds every DATA until released; records the most transactions in flight at once."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = 0
        self.most = 0
        self.release = asyncio.Event()
        self.changed = asyncio.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        async with self.changed:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            self.changed.notify_all()
        await self.release.wait()
        reply = await super().handle_DATA(server, session, envelope)
        async with self.changed:
            self.in_flight -= 1
            self.changed.notify_all()
        return reply


class TestDestinationLimit:
    @pytest.fixture
    async def remote(self) -> AsyncIterator[RemoteServer]:
        server = await start_remote(StallingRemote())
        yield server
        server.server.close()

    @pytest.fixture
    def settings_overrides(self, remote: RemoteServer) -> dict[str, Any]:
        return {
            "relay_url": f"smtp://127.0.0.1:{remote.port}",
            "destination_concurrency": 2,
            "worker_poll_interval": 0.5,
        }

    async def test_no_more_than_the_limit_in_flight_to_one_destination(
        self, harness: Harness, remote: RemoteServer
    ) -> None:
        handler = remote.handler
        assert isinstance(handler, StallingRemote)
        sender = await harness.create_inbox()
        sent = [await _send(harness, sender, to=[f"r{i}@remote.example"]) for i in range(6)]
        async with handler.changed:
            await asyncio.wait_for(handler.changed.wait_for(lambda: handler.in_flight == 2), 10)
        # Two are stuck at the remote; the other four are due but must not be claimed.
        queued = (await harness.http.get("/api/v1/deliveries", params={"state": "queued"})).json()
        assert len(queued["items"]) == 6
        async with harness.runtime.db.read() as session:
            from sqlalchemy import func, select

            from app.store.models import Delivery

            leased = (
                await session.execute(select(func.count()).where(Delivery.lease_owner.is_not(None)))
            ).scalar()
        assert leased == 2
        handler.release.set()
        for s in sent:
            await _wait(harness, s["deliveries"][0]["id"], "delivered")
        assert handler.most == 2
        assert len(handler.received) == 6
