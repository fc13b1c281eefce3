"""`assay token create|list|revoke|show-local`: API tokens, through the gateway (admin scope) or, with
`--direct`, in the database ASSAY_DATABASE_URL names (the first admin token of a deployment)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from services.cli.api_token import gateway_client, read_saved_token, token_file
from services.cli.client import GatewayError
from services.cli.render import table
from shared.operations.config import Settings
from shared.store.database import create_engine, migrate, sessions
from shared.store.models import ApiToken
from shared.store.tokens import SCOPES, Scope, Sessions, create_token, list_tokens, revoke_token

Result = TypeVar("Result")


def _direct(settings: Settings, work: Callable[[Sessions], Awaitable[Result]]) -> Result:
    """Run `work` on the database (migrated first: the first token may come before any service ran)."""

    async def run() -> Result:
        engine = create_engine(settings.database_url)
        try:
            await migrate(engine)
            return await work(sessions(engine))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _row(token: ApiToken) -> dict[str, Any]:
    return {
        "token_id": token.token_id,
        "name": token.name,
        "scope": token.scope,
        "created_at": token.created_at.isoformat(),
        "last_used_at": token.last_used_at.isoformat() if token.last_used_at else None,
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
    }


def create(settings: Settings, args: argparse.Namespace) -> int:
    scope: Scope = args.scope
    if args.direct:
        token, row = _direct(settings, lambda s: create_token(s, args.name, scope))
        about = _row(row)
    else:
        with gateway_client(settings) as gateway:
            answer = gateway.create_token(args.name, scope)
        token, about = answer["token"], answer["about"]
    if args.json:
        print(json.dumps({"token": token, "about": about}, indent=2))
        return 0
    print(f"created token {about['name']} (id {about['token_id']}, scope {about['scope']}); shown only now:")
    print(token)  # alone on the last line, for scripts
    return 0


def list_all(settings: Settings, args: argparse.Namespace) -> int:
    if args.direct:
        tokens = [_row(row) for row in _direct(settings, list_tokens)]
    else:
        with gateway_client(settings) as gateway:
            tokens = gateway.tokens()["tokens"]
    if args.json:
        print(json.dumps({"tokens": tokens}, indent=2))  # the gateway's answer, also with --direct
        return 0
    headers = ["id", "name", "scope", "created", "last used", "revoked"]
    rows = [
        [
            t["token_id"],
            t["name"],
            t["scope"],
            t["created_at"],
            t["last_used_at"] or "-",
            t["revoked_at"] or "-",
        ]
        for t in tokens
    ]
    print("\n".join(table(headers, rows)))
    return 0


def revoke(settings: Settings, args: argparse.Namespace) -> int:
    if args.direct:
        row = _direct(settings, lambda s: revoke_token(s, args.token_id))
        if row is None:
            print(f"assay: token {args.token_id} not found", file=sys.stderr)
            return 1
        about = _row(row)
    else:
        with gateway_client(settings) as gateway:
            about = gateway.revoke_token(args.token_id)
    if args.json:
        print(json.dumps(about, indent=2))
        return 0
    print(f"revoked token {about['token_id']} ({about['name']})")
    return 0


def show_local(settings: Settings, args: argparse.Namespace) -> int:
    token = read_saved_token(settings)
    if token is None:
        print(f"assay: no saved token at {token_file(settings)} (`assay up` saves one)", file=sys.stderr)
        return 1
    print(json.dumps({"gateway_url": settings.gateway_url, "token": token}) if args.json else token)
    return 0


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Dispatch `assay token <action>`; a refusal by the gateway is exit 2 with its reason."""
    handlers = {"create": create, "list": list_all, "revoke": revoke, "show-local": show_local}
    try:
        return handlers[args.action](settings, args)
    except GatewayError as error:
        print(f"assay: {error}", file=sys.stderr)
        return 2


def add_parser(commands: Any) -> None:
    """The `token` subcommand and its actions."""
    tokens = commands.add_parser("token", help="create, list and revoke API tokens")
    actions = tokens.add_subparsers(dest="action", required=True)
    direct_help = "write the database (ASSAY_DATABASE_URL) instead of asking the gateway"
    json_help = "print the answer as JSON"

    new = actions.add_parser("create", help="create a token; it is printed once, alone on the last line")
    new.add_argument("name")
    new.add_argument(
        "--scope", choices=SCOPES, default="submit", help="read < submit < admin (default: submit)"
    )
    new.add_argument("--direct", action="store_true", help=direct_help)
    new.add_argument("--json", action="store_true", help="print the token and its record as JSON")

    listing = actions.add_parser("list", help="list tokens (never their secrets)")
    listing.add_argument("--direct", action="store_true", help=direct_help)
    listing.add_argument("--json", action="store_true", help=json_help)

    gone = actions.add_parser("revoke", help="revoke a token by its id")
    gone.add_argument("token_id")
    gone.add_argument("--direct", action="store_true", help=direct_help)
    gone.add_argument("--json", action="store_true", help=json_help)

    local = actions.add_parser(
        "show-local", help="print the token `assay up` saved for this gateway (for curl)"
    )
    local.add_argument("--json", action="store_true", help="print the gateway's URL and the token as JSON")
    tokens.set_defaults(handler=run)
