"""Schemathesis against our OpenAPI document and a live harness (both stores): generated
requests for every operation, valid and invalid, never get a server error, and valid
ones get answers that conform to the documented status codes and response schemas.

The cases are drawn deterministically (``derandomize=True``) by a hypothesis run that
only collects them; each is then sent over HTTP (in a thread: schemathesis' client is
synchronous) to the harness running on the test's event loop."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from app.api.app import openapi_document
from tests.support import Harness, simple_mail

POSITIVE = 4
NEGATIVE = 2


def draw(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    drawn: list[Any] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(case: Any) -> None:
        drawn.append(case)

    try:
        collect()
    except Unsatisfiable:  # e.g. no invalid request exists for an operation without inputs
        pass
    return drawn


@pytest.mark.parametrize("settings_overrides", [{"wait_max_timeout": 0.2}])
async def test_no_server_errors_and_documented_answers(harness: Harness) -> None:
    schema = schemathesis.openapi.from_dict(openapi_document())
    inbox = await harness.create_inbox()
    await harness.send("a@example.com", [inbox["address"]], simple_mail(to=inbox["address"]))
    message = (await harness.http.get(f"/api/v1/inboxes/{inbox['id']}/wait")).json()["items"][0]
    real = {"inbox_id": inbox["id"], "message_id": message["id"]}

    operations = [result.ok() for result in schema.get_all_operations()]
    cases: list[tuple[Any, bool]] = []
    # One hypothesis run draws a case for every operation at once (per-operation runs
    # cost ~0.6 s each in set-up alone).
    for drawn in draw(st.tuples(*(op.as_strategy() for op in operations)), POSITIVE):
        for case in drawn:
            cases.append((case, True))
            params = {k: v for k, v in real.items() if k in (case.path_parameters or {})}
            if params:  # the same request against objects that exist
                variant = case.operation.Case(
                    path_parameters={**case.path_parameters, **params},
                    headers=dict(case.headers or {}),
                    query=case.query,
                    body=case.body,
                    media_type=case.media_type,
                )
                cases.append((variant, True))
    negative = st.one_of(
        *(op.as_strategy(generation_mode=GenerationMode.NEGATIVE) for op in operations)
    )
    cases += [(case, False) for case in draw(negative, NEGATIVE * len(operations))]
    assert len(cases) > 100

    def run(case: Any, positive: bool) -> None:
        checks = [not_a_server_error]
        if positive:
            checks += [status_code_conformance, response_schema_conformance]
        case.call_and_validate(base_url=harness.base_url, checks=checks, timeout=30)

    failures = []
    started = time.perf_counter()
    for case, positive in cases:
        try:
            await asyncio.to_thread(run, case, positive)
        except Exception as exc:  # schemathesis' FailureGroup (one per failing case)
            failures.append(f"{case.method} {case.formatted_path}: {exc}"[:2000])
    # Bounded: the requests themselves take a few seconds per store.
    assert time.perf_counter() - started < 60
    assert not failures, "\n\n".join(failures[:10])
