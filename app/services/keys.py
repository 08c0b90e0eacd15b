"""API keys: create (shown once), list, revoke, and resolve a presented key to its tenant.

SECURITY
    A key is ``mhk_`` + 43 url-safe characters (32 random bytes); the prefix
    lets secret scanners recognise leaked keys. Only its SHA-256 is stored;
    a presented key is hashed, looked up, and compared in constant time.
    Revocation is effective at once: every request looks its key up (no cache).
    Each key is its own tenant, created with it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, update

from app.errors import Conflict, InvalidInput, NotFound
from app.store.db import Database
from app.store.models import ApiKey, Tenant
from app.store.types import utcnow

KEY_PREFIX = "mhk_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class KeyInfo:
    id: str
    name: str
    prefix: str
    tenant_id: str
    created_at: datetime
    revoked_at: datetime | None


def _info(k: ApiKey) -> KeyInfo:
    return KeyInfo(k.id, k.name, k.prefix, k.tenant_id, k.created_at, k.revoked_at)


class Keys:
    def __init__(self, *, db: Database, admin_key: str | None = None) -> None:
        self.db = db
        self.admin_key = admin_key

    async def create(self, name: str) -> tuple[KeyInfo, str]:
        """A new key and its tenant; returns the key text (shown once, never stored)."""
        name = name.strip()
        if not name or len(name) > 100:
            raise InvalidInput("name: 1 to 100 characters")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        now = utcnow()
        row = ApiKey(
            id=str(uuid.uuid4()),
            tenant_id=str(uuid.uuid4()),
            name=name,
            prefix=key[:12],
            key_hash=hash_key(key),
            created_at=now,
            revoked_at=None,
        )
        async with self.db.write() as session:
            if (await session.execute(select(ApiKey.id).where(ApiKey.name == name))).scalar():
                raise Conflict(f"a key named {name!r} exists")
            session.add(Tenant(id=row.tenant_id, name=f"key:{name}", created_at=now))
            await session.flush()
            session.add(row)
        return _info(row), key

    async def list(self) -> list[KeyInfo]:
        async with self.db.read() as session:
            rows = await session.execute(select(ApiKey).order_by(ApiKey.created_at))
            return [_info(k) for k in rows.scalars()]

    async def revoke(self, name_or_id: str) -> KeyInfo:
        async with self.db.write() as session:
            row = (
                await session.execute(
                    select(ApiKey).where(or_(ApiKey.name == name_or_id, ApiKey.id == name_or_id))
                )
            ).scalar()
            if row is None:
                raise NotFound(f"no key {name_or_id}")
            if row.revoked_at is None:
                row.revoked_at = utcnow()
                await session.execute(
                    update(ApiKey).where(ApiKey.id == row.id).values(revoked_at=row.revoked_at)
                )
            return _info(row)

    async def keyed_mode(self) -> bool:
        """True when keys are required: an admin key is set or any key is active."""
        if self.admin_key:
            return True
        async with self.db.read() as session:
            found = (
                await session.execute(select(ApiKey.id).where(ApiKey.revoked_at.is_(None)).limit(1))
            ).scalar()
        return found is not None

    async def tenant_of(self, name_or_id: str) -> str | None:
        """The tenant of the active key with this name or id (catch-all), or None."""
        async with self.db.read() as session:
            value = (
                await session.execute(
                    select(ApiKey.tenant_id).where(
                        or_(ApiKey.name == name_or_id, ApiKey.id == name_or_id),
                        ApiKey.revoked_at.is_(None),
                    )
                )
            ).scalar()
        return None if value is None else str(value)

    def is_admin(self, presented: str) -> bool:
        return bool(self.admin_key) and hmac.compare_digest(
            presented.encode(), (self.admin_key or "").encode()
        )

    async def tenant_for(self, presented: str) -> str | None:
        """The tenant of an active key, or None."""
        digest = hash_key(presented)
        async with self.db.read() as session:
            row = (
                await session.execute(
                    select(ApiKey.key_hash, ApiKey.tenant_id).where(
                        ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None)
                    )
                )
            ).first()
        if row is None or not hmac.compare_digest(row[0], digest):
            return None
        return str(row[1])
