"""Mailpit's chaos triggers as our fault rules.

``Sender`` becomes a ``mail``-stage rule and ``Recipient`` an ``rcpt``-stage rule,
each answering ``ErrorCode`` with ``Probability`` percent (unseeded), for all
mail, recognised later by their reply text. ``PUT`` replaces them (omitted
triggers reset to 0 %, i.e. no rule). Our fault rules have no AUTH stage, so an
``Authentication`` trigger above 0 % is refused (400) rather than ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.api.schemas.rules import RuleCreate, RuleOut, RuleReply
from app.compat.mailpit.body import Fields, read_body
from app.compat.mailpit.deps import RulesDep
from app.compat.mailpit.errors import BadRequest, MailpitRoute
from app.services.rules import Rules

router = APIRouter(route_class=MailpitRoute)

Stage = Literal["mail", "rcpt"]
TRIGGERS: dict[str, tuple[Stage, str]] = {
    "Sender": ("mail", "Chaos sender error (Mailpit chaos trigger)"),
    "Recipient": ("rcpt", "Chaos recipient error (Mailpit chaos trigger)"),
}


def _is_trigger(rule: RuleOut, stage: str, text: str) -> bool:
    return (
        rule.stage == stage
        and rule.reply is not None
        and rule.reply.text == text
        and rule.match.recipient is None
        and rule.match.sender is None
        and rule.match.inbox_id is None
    )


async def _current(rules: Rules) -> tuple[dict[str, Any], list[str]]:
    """The triggers as Mailpit shows them, and the ids of the rules behind them."""
    listed = (await rules.list()).items
    shown: dict[str, Any] = {}
    ids: list[str] = []
    for name, (stage, text) in TRIGGERS.items():
        found = [r for r in listed if _is_trigger(r, stage, text)]
        ids.extend(r.id for r in found)
        rule = found[-1] if found else None
        shown[name] = {
            "ErrorCode": rule.reply.code if rule and rule.reply else 451,
            "Probability": round((rule.probability or 0) * 100) if rule else 0,
        }
    shown["Authentication"] = {"ErrorCode": 451, "Probability": 0}
    return shown, ids


def _trigger(body: Fields, name: str) -> tuple[int, int] | None:
    """(ErrorCode, Probability) of one trigger; None when it is absent or 0 %."""
    trigger = body.obj(name)
    if trigger is None:
        return None
    code = trigger.number("ErrorCode", 451)
    probability = trigger.number("Probability", 0)
    if not 0 <= probability <= 100:
        raise BadRequest(f"{name}.Probability: expected 0..100")
    if probability and not 400 <= code <= 599:
        raise BadRequest(f"{name}.ErrorCode: expected 400..599")
    return (code, probability) if probability else None


@router.get("/api/v1/chaos")
async def get_chaos(rules: RulesDep) -> JSONResponse:
    return JSONResponse((await _current(rules))[0])


@router.put("/api/v1/chaos")
async def set_chaos(request: Request, rules: RulesDep) -> JSONResponse:
    body = await read_body(request) or Fields({})
    if _trigger(body, "Authentication") is not None:
        raise BadRequest(
            "Authentication: not supported (fault rules have no AUTH stage); "
            "use Sender or Recipient"
        )
    wanted = {name: _trigger(body, name) for name in TRIGGERS}
    _, old = await _current(rules)
    for rule_id in old:
        await rules.delete(rule_id)
    for name, (stage, text) in TRIGGERS.items():
        setting = wanted[name]
        if setting is not None:
            code, probability = setting
            await rules.create(
                RuleCreate(
                    stage=stage,
                    reply=RuleReply(code=code, text=text),
                    probability=probability / 100,
                )
            )
    return JSONResponse((await _current(rules))[0])
