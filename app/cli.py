"""The ``mailharness`` command: serve | migrate | openapi.

mailharness serve [--host H] [--http-port P] [--smtp-port P]
    HTTP API + SMTP intake in one process on the SQLite file or Postgres;
    migrates first; stops cleanly on SIGTERM/SIGINT.
mailharness migrate
    Applies the Alembic migrations to the configured store.
mailharness openapi [--output FILE] [--check]
    Writes the OpenAPI document (default openapi/openapi.json); with
    --check, exits 1 when the file differs from the code.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from app.config import Settings


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s [%(name)s] %(message)s",
        stream=sys.stderr,
    )
    # aiosmtpd logs every command line at INFO; ours says one line per transaction.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _openapi_text() -> str:
    from app.api.app import openapi_document

    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"


def cmd_openapi(args: argparse.Namespace) -> int:
    path = Path(args.output)
    text = _openapi_text()
    if args.check:
        current = path.read_text() if path.exists() else ""
        if current != text:
            print(f"{path} is stale: run `mailharness openapi`", file=sys.stderr)  # noqa: T201
            return 1
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mailharness", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve_p = sub.add_parser("serve", help="run HTTP + SMTP")
    serve_p.add_argument("--host")
    serve_p.add_argument("--http-port", type=int)
    serve_p.add_argument("--smtp-port", type=int)
    serve_p.add_argument(
        "--no-worker", action="store_true", help="do not run the delivery worker here"
    )
    sub.add_parser("worker", help="run only the delivery worker")
    sub.add_parser("migrate", help="apply database migrations")
    keys_p = sub.add_parser("keys", help="manage API keys (each key is a tenant)")
    keys_sub = keys_p.add_subparsers(dest="keys_command", required=True)
    create_p = keys_sub.add_parser("create", help="create a key; prints it alone on the last line")
    create_p.add_argument("--name", required=True)
    keys_sub.add_parser("list", help="list keys (never the keys themselves)")
    revoke_p = keys_sub.add_parser("revoke", help="revoke a key by name or id (effective at once)")
    revoke_p.add_argument("name_or_id")
    openapi_p = sub.add_parser("openapi", help="write the OpenAPI document")
    openapi_p.add_argument("--output", default="openapi/openapi.json")
    openapi_p.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)

    if args.command == "openapi":
        return cmd_openapi(args)

    overrides = {
        key: value
        for key, value in (
            ("host", getattr(args, "host", None)),
            ("http_port", getattr(args, "http_port", None)),
            ("smtp_port", getattr(args, "smtp_port", None)),
        )
        if value is not None
    }
    settings = Settings(**overrides)
    configure_logging(settings.log_level)
    if args.command == "migrate":
        from app.store.migrate import upgrade

        settings.data_dir.mkdir(parents=True, exist_ok=True)
        asyncio.run(upgrade(settings.effective_database_url))
        logging.getLogger(__name__).info("migrated %s", _redact(settings.effective_database_url))
        return 0
    if args.command == "keys":
        return asyncio.run(_keys(settings, args))
    from app.server import run_worker, serve

    if args.command == "worker":
        asyncio.run(run_worker(settings))
    else:
        asyncio.run(serve(settings, worker=not args.no_worker))
    return 0


async def _keys(settings: Settings, args: argparse.Namespace) -> int:
    from app.errors import MailharnessError
    from app.services.keys import Keys
    from app.store.db import Database
    from app.store.migrate import upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade(settings.effective_database_url)
    db = Database.from_settings(settings)
    keys = Keys(db=db, admin_key=settings.admin_key)
    out = sys.stdout
    try:
        if args.keys_command == "create":
            info, key = await keys.create(args.name)
            out.write(f"created key {info.name} ({info.id}); it is shown only once:\n{key}\n")
        elif args.keys_command == "list":
            for k in await keys.list():
                state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active"
                out.write(f"{k.id}  {k.name}  {k.prefix}...  {state}\n")
        else:
            info = await keys.revoke(args.name_or_id)
            out.write(f"revoked key {info.name} ({info.id})\n")
    except MailharnessError as exc:
        sys.stderr.write(f"mailharness keys: {exc.detail}\n")
        return 1
    finally:
        await db.close()
    return 0


def _redact(url: str) -> str:
    """The URL without its password, for logs."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    raise SystemExit(main())
