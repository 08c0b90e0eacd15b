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

    for listing in ("/api/v1/inboxes", "/api/v1/messages", "/api/v1/deliveries", "/api/v1/rules"):
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
