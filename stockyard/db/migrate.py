"""Alembic migrations of the tables in stockyard.db.catalogue: `upgrade` brings a database to the catalogue.

Several Dagster steps and test processes may upgrade one database at once, so an upgrade holds a
transaction-scoped advisory lock: the first applies the revisions in one transaction, the others wait and
find nothing left to do. Alembic's version table lives in a schema of its own, `migrations`, apart from the
application's schemas and from dbt's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.pool import NullPool

from stockyard.db.catalogue import SCHEMAS

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_SCHEMA = "migrations"
_LOCK_KEY = "stockyard.migrations"


def sqlalchemy_url(database_url: str) -> str:
    """The psycopg 3 form of a postgresql:// URL (SQLAlchemy would otherwise pick psycopg2)."""
    scheme, _, rest = database_url.partition("://")
    return f"postgresql+psycopg://{rest}" if scheme in ("postgresql", "postgres") else database_url


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Autogenerate looks at the application's schemas only: dbt owns the others."""
    return name in SCHEMAS if type_ == "schema" else True


def alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    assert head is not None, f"no migration revisions under {MIGRATIONS_DIR}"
    return head


@dataclass(frozen=True)
class Migration:
    """The revisions a database was at before and after a migration (None: no tables yet)."""

    before: str | None
    after: str | None


def upgrade(database_url: str, revision: str = "head") -> Migration:
    """Apply the revisions up to `revision` that `database_url` lacks (none when it is up to date)."""
    return _run(database_url, lambda config: command.upgrade(config, revision))


def downgrade(database_url: str, revision: str) -> Migration:
    """Undo the revisions after `revision`: dropped columns and tables lose their data."""
    return _run(database_url, lambda config: command.downgrade(config, revision))


def current_revision(connection: Connection) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table_schema": VERSION_SCHEMA})
    return context.get_current_revision()


def _run(database_url: str, step: Callable[[Config], None]) -> Migration:
    engine = create_engine(sqlalchemy_url(database_url), poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(text("select pg_advisory_xact_lock(hashtext(:key))"), {"key": _LOCK_KEY})
            connection.execute(text(f"create schema if not exists {VERSION_SCHEMA}"))
            before = current_revision(connection)
            step(alembic_config(connection))
            return Migration(before=before, after=current_revision(connection))
    finally:
        engine.dispose()
