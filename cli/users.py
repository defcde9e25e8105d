"""`stockyard users`: the API's accounts from the command line, for what no API call can do yet (the first
admin).

The password never travels as an argument (shells keep a history, `ps` shows arguments to everyone): it is
read from STOCKYARD_ADMIN_PASSWORD, from standard input with --password-stdin, or from a hidden prompt.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import TYPE_CHECKING, Annotated

import psycopg
import typer
from psycopg.types.json import Jsonb

from cli.services import ensure_services
from stockyard.db.catalogue import audit_log, users
from stockyard.db.migrate import upgrade
from stockyard.settings import get_services_settings

if TYPE_CHECKING:
    from serving.account_schemas import Registration

PASSWORD_VARIABLE = "STOCKYARD_ADMIN_PASSWORD"
USERS = f"{users.schema}.{users.name}"
AUDIT_LOG = f"{audit_log.schema}.{audit_log.name}"
# What the audit trail says acted, as no user is signed in.
ACTED_THROUGH = {"via": "stockyard users create-admin"}

users_app = typer.Typer(help="The API's accounts.", no_args_is_help=True)


@users_app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="How the admin signs in.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    display_name: Annotated[str | None, typer.Option(help="Shown instead of the email.")] = None,
) -> None:
    """Create an admin account, or make an existing account an admin (its password is then left as it is).

    The password comes from STOCKYARD_ADMIN_PASSWORD, standard input (--password-stdin) or a hidden prompt."""
    database_url = ensure_services(get_services_settings()).database_url
    upgrade(database_url)
    with psycopg.connect(database_url) as conn:
        existing = conn.execute(f"select user_id from {USERS} where email = %s", (email.lower(),)).fetchone()
        if existing is not None:
            (user_id,) = existing
            conn.execute(
                f"update {USERS} set role = 'admin', is_active = true where user_id = %s", (user_id,)
            )
            _audit(conn, user_id, "cli.user_promote")
            typer.echo(f"{email.lower()} (user {user_id}) is now an admin; its password is unchanged")
            return
        # The API's modules need the `serve` extra (argon2, email-validator): imported only to make one.
        from serving.auth import hash_password

        registration = _registration(email, _password(password_stdin), display_name)
        password_hash = asyncio.run(hash_password(registration.password))
        (user_id,) = conn.execute(  # type: ignore[misc]
            f"insert into {USERS} (email, password_hash, display_name, role) values (%s, %s, %s, 'admin')"
            " returning user_id",
            (registration.email.lower(), password_hash, registration.display_name),
        ).fetchone()
        _audit(conn, user_id, "cli.admin_create")
    typer.echo(f"admin {registration.email.lower()} created (user {user_id})")


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if os.environ.get(PASSWORD_VARIABLE):
        return os.environ[PASSWORD_VARIABLE]
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


def _registration(email: str, password: str, display_name: str | None) -> Registration:
    """The API's own rules for a new account (a valid email, a password of 12 to 256 characters)."""
    from pydantic import ValidationError

    from serving.account_schemas import Registration

    try:
        return Registration(email=email, password=password, display_name=display_name)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
            for problem in error.errors()
        )
        typer.echo(f"no admin created: {problems}", err=True)
        raise typer.Exit(2) from None


def _audit(conn: psycopg.Connection, user_id: int, action: str) -> None:
    conn.execute(
        f"insert into {AUDIT_LOG} (user_id, action, target, result, detail)"
        " values (%s, %s, %s, 'success', %s)",
        (user_id, action, f"user:{user_id}", Jsonb(ACTED_THROUGH)),
    )
