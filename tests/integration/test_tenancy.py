"""API keys and tenant isolation: every endpoint answers 404 for another tenant's ids
(the endpoints are read from the OpenAPI document, so new ones are covered), a revoked
key stops at once, keys are managed with the admin key."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from app.api.app import openapi_document
from app.store.models import SmtpSession
from tests.support import Harness, simple_mail

OPEN_PATHS = {"/healthz", "/readyz"}
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/api/v1/inboxes/{inbox_id}/send"): {"to": ["x@example.com"], "subject": "x"},
    ("post", "/api/v1/messages/{message_id}/release"): {"to": ["x@example.com"]},
    ("patch", "/api/v1/messages/{message_id}"): {"seen": True},
}


async def _key(h: Harness, name: str) -> dict[str, str]:
    _, key = await h.runtime.keys().create(name)
    return {"Authorization": f"Bearer {key}"}


async def test_every_endpoint_hides_other_tenants(harness: Harness) -> None:
    a = await _key(harness, "tenant-a")
    b = {"X-API-Key": (await harness.runtime.keys().create("tenant-b"))[1]}
    http = harness.http

    inbox = (await http.post("/api/v1/inboxes", json={"address": "a-box"}, headers=a)).json()
    await harness.send("app@example.com", [inbox["address"]], simple_mail(to=inbox["address"]))
    msg = (await http.get(f"/api/v1/inboxes/{inbox['id']}/wait", headers=a)).json()["items"][0]
    sent = (
        await http.post(
            f"/api/v1/inboxes/{inbox['id']}/send", json={"to": ["z@example.com"]}, headers=a
        )
    ).json()
    rule = (
        await http.post(
            "/api/v1/rules",
            json={"match": {"inbox_id": inbox["id"]}, "stage": "rcpt", "reply": {"code": 451}},
            headers=a,
        )
    ).json()
    hook = (
        await http.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/x"}, headers=a)
    ).json()
    if harness.runtime.session_recorder is not None:
        await harness.runtime.session_recorder.flush()
    async with harness.runtime.db.read() as session:
        session_id = (await session.execute(select(SmtpSession.id).limit(1))).scalar()
    ids = {
        "inbox_id": inbox["id"],
        "message_id": msg["id"],
        "attachment_id": "00000000-0000-4000-8000-000000000001",
        "outbound_id": sent["id"],
        "delivery_id": sent["deliveries"][0]["id"],
        "rule_id": rule["id"],
        "webhook_id": hook["id"],
        "call_id": "00000000-0000-4000-8000-000000000003",
        "session_id": session_id or "00000000-0000-4000-8000-000000000002",
    }

    checked = 0
    for path, methods in openapi_document()["paths"].items():
        if path in OPEN_PATHS or path.startswith("/api/v1/keys") or "{" not in path:
            continue
        url = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)
        for method in methods:
            resp = await http.request(
                method.upper(),
                url,
                json=BODIES.get((method, path)),
                params={"timeout": 0} if path.endswith(("/wait", "/quiet")) else None,
                headers=b,
            )
            assert resp.status_code == 404, (method, path, resp.status_code, resp.text)
            assert resp.json()["error"] == "not_found"
            checked += 1
    assert checked >= 15

    for listing in (
        "/api/v1/inboxes",
        "/api/v1/messages",
        "/api/v1/deliveries",
        "/api/v1/rules",
        "/api/v1/webhooks",
    ):
        assert (await http.get(listing, headers=b)).json()["items"] == [], listing
    # Nothing of A's was touched by B's attempts.
    assert (await http.get(f"/api/v1/messages/{msg['id']}", headers=a)).json()["seen"] is False
    assert (await http.get(f"/api/v1/inboxes/{inbox['id']}", headers=a)).json()[
        "message_count"
    ] == 1
    assert (await http.get(f"/api/v1/rules/{rule['id']}", headers=a)).status_code == 200


async def test_keys_required_once_they_exist_and_revocation_is_immediate(harness: Harness) -> None:
    http = harness.http
    assert (await http.get("/api/v1/inboxes")).status_code == 200  # open mode
    keys = harness.runtime.keys()
    info, key = await keys.create("ci")
    assert key.startswith("mhk_") and len(key) > 40
    headers = {"Authorization": f"Bearer {key}"}
    resp = await http.get("/api/v1/inboxes")
    assert resp.status_code == 401 and resp.json()["error"] == "unauthorized"
    assert (
        await http.get("/api/v1/inboxes", headers={"X-API-Key": "mhk_wrong"})
    ).status_code == 401
    assert (await http.get("/api/v1/inboxes", headers=headers)).status_code == 200
    assert (await http.get("/healthz")).status_code == 200
    await keys.revoke("ci")
    assert (await http.get("/api/v1/inboxes", headers=headers)).status_code == 401
    listed = await keys.list()
    assert [(k.name, k.revoked_at is not None) for k in listed] == [("ci", True)]
    assert all(key not in repr(k) for k in listed)


@pytest.mark.parametrize("settings_overrides", [{"admin_key": "adm-very-secret"}])
async def test_admin_key_manages_keys_over_the_api(harness: Harness) -> None:
    http = harness.http
    admin = {"Authorization": "Bearer adm-very-secret"}
    assert (await http.post("/api/v1/keys", json={"name": "x"})).status_code == 401
    created = await http.post("/api/v1/keys", json={"name": "pipeline"}, headers=admin)
    assert created.status_code == 201
    key = created.json()["key"]
    user = {"Authorization": f"Bearer {key}"}
    assert (await http.post("/api/v1/keys", json={"name": "y"}, headers=user)).status_code == 401
    assert (
        await http.post("/api/v1/keys", json={"name": "pipeline"}, headers=admin)
    ).status_code == 409
    listed = (await http.get("/api/v1/keys", headers=admin)).json()["items"]
    assert [k["name"] for k in listed] == ["pipeline"] and "key" not in listed[0]
    assert (await http.get("/api/v1/inboxes", headers=user)).status_code == 200
    assert (await http.delete("/api/v1/keys/pipeline", headers=admin)).status_code == 204
    assert (await http.get("/api/v1/inboxes", headers=user)).status_code == 401
    assert (await http.delete("/api/v1/keys/nope", headers=admin)).status_code == 404


class TestSmtpWithKeys:
    @pytest.fixture
    async def remote(self) -> Any:
        from tests.support import start_remote

        server = await start_remote()
        yield server
        server.server.close()

    @pytest.fixture
    def settings_overrides(self, remote: Any) -> dict[str, Any]:
        return {
            "smtp_auth_allow_plaintext": True,
            "relay_url": f"smtp://127.0.0.1:{remote.port}",
            "relay_match": "*@customer.example",
        }

    async def test_auth_with_a_key_attributes_mail_and_refuses_strangers(
        self, harness: Harness, remote: Any
    ) -> None:
        import aiosmtplib

        _, key_a = await harness.runtime.keys().create("smtp-a")
        _, key_b = await harness.runtime.keys().create("smtp-b")
        a = {"X-API-Key": key_a}
        b = {"X-API-Key": key_b}
        inbox_a = (
            await harness.http.post("/api/v1/inboxes", json={"address": "known"}, headers=a)
        ).json()
        # A relay-matching address that also has an inbox (so RCPT accepts it).
        await harness.http.post(
            "/api/v1/inboxes", json={"address": "buyer@customer.example"}, headers=a
        )

        async with aiosmtplib.SMTP(hostname=harness.smtp_host, port=harness.smtp_port) as client:
            await client.mail("app@example.com")
            with pytest.raises(aiosmtplib.SMTPRecipientRefused) as err:
                await client.rcpt("brand-new@mailharness.test")
            assert err.value.code == 550 and err.value.message.startswith("5.7.1")
            with pytest.raises(aiosmtplib.SMTPRecipientRefused):  # an open-relay attempt
                await client.rcpt("someone@elsewhere.example")
            await client.rcpt(inbox_a["address"])  # an existing inbox: its tenant's mail
            await client.rcpt("buyer@customer.example")  # matches the relay rule...
            assert (await client.data(simple_mail(to=inbox_a["address"]))).code == 250
        # ...but an unauthenticated submission is never relayed onward (no tenant has it).
        from sqlalchemy import func

        from app.store.models import Delivery

        async with harness.runtime.db.read() as session:
            assert (await session.execute(select(func.count()).select_from(Delivery))).scalar() == 0
        assert (await harness.http.get(f"/api/v1/inboxes/{inbox_a['id']}", headers=a)).json()[
            "message_count"
        ] == 1
        assert (await harness.http.get("/api/v1/messages", headers=b)).json()["items"] == []

        async with aiosmtplib.SMTP(hostname=harness.smtp_host, port=harness.smtp_port) as client:
            with pytest.raises(aiosmtplib.SMTPAuthenticationError) as auth_err:
                await client.login("anyone", "mhk_not-a-key")
            assert auth_err.value.code == 535

        async with aiosmtplib.SMTP(hostname=harness.smtp_host, port=harness.smtp_port) as client:
            await client.login("ci", key_b)
            await client.sendmail(
                "app@example.com",
                ["fresh@mailharness.test", "buyer@customer.example"],
                simple_mail(to="fresh@mailharness.test"),
            )
        boxes_b = (await harness.http.get("/api/v1/inboxes", headers=b)).json()["items"]
        assert [i["address"] for i in boxes_b] == ["fresh@mailharness.test"]
        assert all(
            i["address"] != "fresh@mailharness.test"
            for i in (await harness.http.get("/api/v1/inboxes", headers=a)).json()["items"]
        )
        relayed = (await harness.http.get("/api/v1/deliveries", headers=b)).json()["items"]
        assert [d["recipient"] for d in relayed] == ["buyer@customer.example"]
        done = await harness.http.get(
            f"/api/v1/deliveries/{relayed[0]['id']}/wait", params={"state": "delivered"}, headers=b
        )
        assert done.status_code == 200
        assert [r.rcpt_tos for r in remote.handler.received] == [["buyer@customer.example"]]
        msg = (
            await harness.http.get(f"/api/v1/inboxes/{boxes_b[0]['id']}/wait", headers=b)
        ).json()["items"][0]
        assert msg["envelope"]["authenticated"] == "ci"
        assert key_b not in str(msg)
