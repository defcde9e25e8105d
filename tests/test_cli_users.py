"""`stockyard users create-admin`: the first admin without SQL, its password never an argument."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
from argon2 import PasswordHasher

STOCKYARD = [sys.executable, "-m", "cli.main"]
PASSWORD = "a long enough admin passphrase"


def create_admin(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*STOCKYARD, "users", "create-admin", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_create_admin_from_the_environment_then_promotes_without_touching_the_password(
    empty_database_url: str, redis_url: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "STOCKYARD_SERVICES_DATABASE_URL": empty_database_url,
        "STOCKYARD_SERVICES_REDIS_URL": redis_url,
        "STOCKYARD_SERVICES_STATE_DIR": str(tmp_path / "state"),
    }

    too_short = create_admin(env, "--email", "root@example.com", "--password-stdin", stdin="short\n")
    assert too_short.returncode == 2 and "password" in too_short.stderr, too_short.stderr

    created = create_admin({**env, "STOCKYARD_ADMIN_PASSWORD": PASSWORD}, "--email", "Root@Example.com")
    assert created.returncode == 0, created.stderr
    assert "admin root@example.com created" in created.stdout
    assert PASSWORD not in created.stdout + created.stderr

    with psycopg.connect(empty_database_url) as conn:
        conn.execute(
            "insert into app.users (email, password_hash) values ('ops@example.com', 'a hash of its own')"
        )
    promoted = create_admin(env, "--email", "ops@example.com", "--password-stdin", stdin="ignored\n")
    assert promoted.returncode == 0 and "password is unchanged" in promoted.stdout, promoted.stderr

    with psycopg.connect(empty_database_url) as conn:
        accounts = conn.execute(
            "select email, role, is_active, password_hash from app.users order by email"
        ).fetchall()
        audited = conn.execute("select action, result from app.audit_log order by audit_id").fetchall()
    assert [account[:3] for account in accounts] == [
        ("ops@example.com", "admin", True),
        ("root@example.com", "admin", True),
    ]
    assert accounts[0][3] == "a hash of its own"
    assert PasswordHasher().verify(accounts[1][3], PASSWORD)
    assert audited == [("cli.admin_create", "success"), ("cli.user_promote", "success")]
