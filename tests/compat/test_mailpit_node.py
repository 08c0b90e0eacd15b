"""The npm ``mailpit-api`` client (Node) against ``/compat/mailpit``: info, list, search,
get, headers, attachment, raw, read flags, send, release, delete by ids and by
search, chaos, and its bodiless "delete all" refused. Mail arrives over real
SMTP; both stores.

The client is installed from the npm registry into ``tests/compat/node``
(``npm ci`` from the committed lockfile, once; ``make tools`` does the same).
One ``node mailpit_client.mjs <base>`` process per test takes a JSON command
per line (method and arguments) and answers the client's result as a JSON line. Without Node the test is skipped; a failing
``npm ci`` fails it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.compat.mailpit_support import PDF, base_url, deliver, mail_with_attachment
from tests.support import Harness, simple_mail

NODE_DIR = Path(__file__).parent / "node"


@pytest.fixture(scope="session")
def node() -> str:
    found = shutil.which("node")
    if found is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are not installed (needed for the npm mailpit-api client)")
    if not (NODE_DIR / "node_modules" / "mailpit-api" / "package.json").exists():
        done = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
    return found


class NodeClient:
    """One ``node mailpit_client.mjs <base>`` process; a JSON line per call each way."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def run(self, method: str, *args: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"method": method, "args": list(args)}).encode() + b"\n")
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout=60)
        assert line, "the node client exited"
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def call(self, method: str, *args: Any) -> Any:
        answer = await self.run(method, *args)
        assert answer["ok"], f"{method}{args} failed: {answer['error']}"
        return answer["result"]


@contextlib.asynccontextmanager
async def node_client(node: str, *args: str) -> AsyncIterator[NodeClient]:
    proc = await asyncio.create_subprocess_exec(
        node,
        "mailpit_client.mjs",
        *args,
        cwd=NODE_DIR,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        yield NodeClient(proc)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), timeout=30)


@pytest.fixture
async def mp(harness: Harness, node: str) -> AsyncIterator[NodeClient]:
    async with node_client(node, base_url(harness)) as client:
        yield client


async def test_npm_client_end_to_end(harness: Harness, mp: NodeClient) -> None:
    h = harness
    await deliver(
        h, "alice@mailharness.test", simple_mail(to="alice@mailharness.test", subject="Hi")
    )
    await deliver(
        h, "bob@mailharness.test", mail_with_attachment(to="bob@mailharness.test", subject="Bill")
    )

    info = await mp.call("getInfo")
    assert info["Messages"] == 2 and info["Unread"] == 2
    assert (await mp.call("getConfiguration"))["ChaosEnabled"] is True

    listed = await mp.call("listMessages")
    assert listed["messages_count"] == 2 and listed["total"] == 2
    bill, hi = listed["messages"]
    assert (bill["Subject"], hi["Subject"]) == ("Bill", "Hi")
    assert [m["ID"] for m in (await mp.call("listMessages", 1, 1))["messages"]] == [hi["ID"]]

    found = await mp.call("searchMessages", {"query": "bill"})
    assert [m["ID"] for m in found["messages"]] == [bill["ID"]] and found["messages_count"] == 1

    summary = await mp.call("getMessageSummary", bill["ID"])
    assert summary["From"]["Address"] == "billing@example.com"
    [attachment] = summary["Attachments"]
    assert attachment["FileName"] == "invoice.pdf"
    assert (await mp.call("getMessageSummary"))["ID"] == bill["ID"]  # "latest"
    headers = await mp.call("getMessageHeaders", bill["ID"])
    assert headers["Subject"] == ["Bill"] and headers["X-Tags"] == ["invoice, billing"]
    blob = await mp.call("getMessageAttachment", bill["ID"], attachment["PartID"])
    assert blob["type"] == "application/pdf" and base64.b64decode(blob["base64"]) == PDF
    source = await mp.call("getMessageSource", hi["ID"])
    assert "Subject: Hi\r\n" in source and source.endswith("Hi there\r\n")
    assert (await mp.call("renderMessageText", hi["ID"])).strip() == "Hi there"

    # Read flags: by ids, then everything (Read defaults to false).
    assert await mp.call("setReadStatus", {"IDs": [hi["ID"]], "Read": True}) == "ok"
    flags = {m["ID"]: m["Read"] for m in (await mp.call("listMessages"))["messages"]}
    assert flags == {bill["ID"]: True, hi["ID"]: True}  # bill was opened above
    assert await mp.call("setReadStatus") == "ok"
    assert (await mp.call("listMessages"))["unread"] == 2

    # Send: stored like received mail, readable at once.
    sent = await mp.call(
        "sendMessage",
        {
            "From": {"Email": "shop@example.com", "Name": "Shop"},
            "To": [{"Email": "carol@mailharness.test", "Name": "Carol"}],
            "Subject": "Receipt 42",
            "Text": "Your code is 555123",
            "Attachments": [
                {"Content": base64.b64encode(b"a,b\n1,2\n").decode(), "Filename": "r.csv"}
            ],
        },
    )
    receipt = await mp.call("getMessageSummary", sent["ID"])
    assert receipt["Subject"] == "Receipt 42" and receipt["To"][0]["Name"] == "Carol"
    assert [a["ContentType"] for a in receipt["Attachments"]] == ["text/csv"]
    waited = await mp.call("waitForMessage", {"query": "receipt"}, {"timeout": 5000})
    assert waited["ID"] == sent["ID"]

    # Release through our delivery queue: the delivery gets a final state.
    assert await mp.call("releaseMessage", hi["ID"], {"To": ["gina@mailharness.test"]}) == "ok"
    [delivery] = (
        await h.http.get("/api/v1/deliveries", params={"recipient": "gina@mailharness.test"})
    ).json()["items"]
    done = await h.http.get(f"/api/v1/deliveries/{delivery['id']}/wait", params={"timeout": 20})
    assert done.json()["state"] == "delivered"

    # Chaos: triggers become fault rules and back.
    set_ = await mp.call("setChaosTriggers", {"Sender": {"ErrorCode": 451, "Probability": 5}})
    assert set_["Sender"] == {"ErrorCode": 451, "Probability": 5}
    assert (await mp.call("getChaosTriggers"))["Sender"]["Probability"] == 5
    assert (await mp.call("setChaosTriggers"))["Sender"]["Probability"] == 0

    # Delete by ids, then by search; the bodiless "delete all" is refused (400).
    before = (await mp.call("listMessages"))["total"]
    assert await mp.call("deleteMessages", {"IDs": [hi["ID"]]}) == "ok"
    assert (await mp.call("listMessages"))["total"] == before - 1
    assert await mp.call("deleteMessagesBySearch", {"query": "receipt"}) == "ok"
    left = await mp.call("listMessages")
    assert "Receipt 42" not in [m["Subject"] for m in left["messages"]]
    refused = await mp.run("deleteMessages")
    assert not refused["ok"] and "400" in refused["error"], refused
    assert (await mp.call("listMessages"))["total"] == left["total"] > 0
    assert await mp.call("deleteMessages", {"IDs": []}) == "ok"
    assert (await mp.call("listMessages"))["total"] == 0


async def test_npm_client_with_an_api_key_as_basic_auth(harness: Harness, node: str) -> None:
    h = harness
    keys = h.runtime.keys()
    _, key_a = await keys.create("a")
    _, key_b = await keys.create("b")
    async with (
        node_client(node, base_url(h), "ci", key_a) as a,
        node_client(node, base_url(h), "ci", key_b) as b,
        node_client(node, base_url(h)) as anonymous,
    ):
        sent = await a.call(
            "sendMessage",
            {"From": {"Email": "app@example.com"}, "To": [{"Email": "k1@mailharness.test"}]},
        )
        assert [m["ID"] for m in (await a.call("listMessages"))["messages"]] == [sent["ID"]]
        assert (await b.call("listMessages"))["total"] == 0
        assert not (await b.run("getMessageSummary", sent["ID"]))["ok"]
        refused = await anonymous.run("listMessages")
        assert not refused["ok"] and "401" in refused["error"]
