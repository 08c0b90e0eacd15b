"""API keys, managed with the admin key: create (the key is shown once), list, revoke."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from pydantic import Field

from app.api.deps import AdminDep
from app.api.schemas.common import ErrorOut, Items, Schema, Timestamp
from app.services.keys import KeyInfo

router = APIRouter(prefix="/api/v1/keys", tags=["keys"])


class KeyCreate(Schema):
    name: str = Field(min_length=1, max_length=100)


class KeyOut(Schema):
    id: str
    name: str
    prefix: str
    created_at: Timestamp
    revoked_at: Timestamp | None


class KeyCreated(KeyOut):
    key: str


def _out(k: KeyInfo) -> KeyOut:
    return KeyOut(
        id=k.id, name=k.name, prefix=k.prefix, created_at=k.created_at, revoked_at=k.revoked_at
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={401: {"model": ErrorOut}, 409: {"model": ErrorOut}},
)
async def create_key(data: KeyCreate, keys: AdminDep) -> KeyCreated:
    """Create a key (a new tenant); the key itself is in this answer only."""
    info, key = await keys.create(data.name)
    return KeyCreated(**_out(info).model_dump(), key=key)


@router.get("", responses={401: {"model": ErrorOut}})
async def list_keys(keys: AdminDep) -> Items[KeyOut]:
    """All keys (never the keys themselves)."""
    return Items[KeyOut](items=[_out(k) for k in await keys.list()])


@router.delete(
    "/{name_or_id}", status_code=204, responses={401: {"model": ErrorOut}, 404: {"model": ErrorOut}}
)
async def revoke_key(name_or_id: str, keys: AdminDep) -> Response:
    """Revoke a key; effective at once."""
    await keys.revoke(name_or_id)
    return Response(status_code=204)
