"""Fault rules: the list with hit counts, a form to add one, delete."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from app.api.deps import MailboxDep, RulesDep
from app.api.schemas.rules import RuleCreate, RuleMatch, RuleReply
from app.errors import InvalidInput
from app.services.mailbox import Mailbox
from app.services.rules import Rules
from app.web.routes.common import (
    optional_float,
    optional_int,
    read_form,
    render,
    see_other,
    validation_message,
)
from app.web.templating import UI

router = APIRouter(include_in_schema=False)

STAGES = ["rcpt", "data", "mail", "connect"]
INBOX_CHOICES = 500


async def _rules_page(
    request: Request,
    rules: Rules,
    mailbox: Mailbox,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    inboxes = await mailbox.list_inboxes(tag=None, limit=INBOX_CHOICES, cursor=None)
    return render(
        request,
        "rules.html",
        {
            "nav": "rules",
            "rules": (await rules.list()).items,
            "inboxes": inboxes.items,
            "addresses": {i.id: i.address for i in inboxes.items},
            "stages": STAGES,
            "error": error,
            "form": form or {},
        },
        status_code=status_code,
    )


@router.get("/rules")
async def rules_page(request: Request, rules: RulesDep, mailbox: MailboxDep) -> Response:
    """Every fault rule of the caller with its hits."""
    return await _rules_page(request, rules, mailbox)


def _rule_from(form: dict[str, str]) -> RuleCreate:
    code = optional_int(form.get("code"), "reply code")
    return RuleCreate(
        match=RuleMatch(
            recipient=form.get("recipient") or None,
            sender=form.get("sender") or None,
            inbox_id=form.get("inbox_id") or None,
        ),
        stage=form.get("stage", ""),  # validated by the model
        action="disconnect" if form.get("action") == "disconnect" else "reply",
        reply=RuleReply(
            code=code, enhanced=form.get("enhanced") or None, text=form.get("text") or None
        )
        if code is not None
        else None,
        delay_ms=optional_int(form.get("delay_ms"), "delay_ms") or 0,
        times=optional_int(form.get("times"), "times"),
        probability=optional_float(form.get("probability"), "probability"),
        seed=optional_int(form.get("seed"), "seed"),
    )


@router.post("/rules")
async def create_rule(request: Request, rules: RulesDep, mailbox: MailboxDep) -> Response:
    form = await read_form(request)
    try:
        await rules.create(_rule_from(form))
    except ValidationError as exc:
        error = validation_message(exc)
    except InvalidInput as exc:
        error = exc.detail
    else:
        return see_other(f"{UI}/rules")
    return await _rules_page(request, rules, mailbox, error=error, form=form, status_code=422)


@router.post("/rules/{rule_id}/delete")
async def delete_rule(rule_id: str, rules: RulesDep) -> Response:
    await rules.delete(rule_id)
    return see_other(f"{UI}/rules")
