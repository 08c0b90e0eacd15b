"""Fault rules: create, list, read, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from app.api.deps import RulesDep
from app.api.schemas.common import ErrorOut, Page
from app.api.schemas.rules import RuleCreate, RuleOut

router = APIRouter(prefix="/api/v1/rules", tags=["rules"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut}}


@router.post("", status_code=status.HTTP_201_CREATED, responses={422: {"model": ErrorOut}})
async def create_rule(data: RuleCreate, rules: RulesDep) -> RuleOut:
    """Add a fault rule; it applies to the next matching SMTP transaction or local delivery."""
    return await rules.create(data)


@router.get("")
async def list_rules(rules: RulesDep) -> Page[RuleOut]:
    """All fault rules with their hit counts, oldest first."""
    return await rules.list()


@router.get("/{rule_id}", responses=NOT_FOUND)
async def get_rule(rule_id: str, rules: RulesDep) -> RuleOut:
    """One fault rule with its hit count."""
    return await rules.get(rule_id)


@router.delete("/{rule_id}", status_code=204, responses=NOT_FOUND)
async def delete_rule(rule_id: str, rules: RulesDep) -> Response:
    """Remove a fault rule."""
    await rules.delete(rule_id)
    return Response(status_code=204)
