"""The ops record of failed Dagster runs (ops.run_failures), written by the run-failure sensor and read by
whoever looks after the platform (the API's admin view, psql)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

from stockyard.db import catalogue

TABLE = catalogue.run_failures
COLUMNS = catalogue.written_columns(TABLE, leaving=("recorded_at",))


@dataclass(frozen=True)
class RunFailure:
    run_id: str
    job_name: str
    failed_at: datetime
    error: str
    step_keys: tuple[str, ...] = ()


def record_run_failure(conn: psycopg.Connection, failure: RunFailure) -> bool:
    """Record `failure` once: True when it is new, False when its run was recorded already (a sensor tick
    repeated after a crash records nothing twice)."""
    if failure.failed_at.tzinfo is None:
        raise ValueError(f"run {failure.run_id}: failed_at {failure.failed_at} has no time zone")
    statement = sql.SQL(
        "insert into {table} ({columns}) values ({values}) on conflict (run_id) do nothing"
    ).format(
        table=sql.Identifier(TABLE.schema or "", TABLE.name),
        columns=sql.SQL(", ").join(map(sql.Identifier, COLUMNS)),
        values=sql.SQL(", ").join(sql.Placeholder() * len(COLUMNS)),
    )
    values = {
        "run_id": failure.run_id,
        "job_name": failure.job_name,
        "failed_at": failure.failed_at,
        "error": failure.error,
        "step_keys": list(failure.step_keys),
    }
    with conn.transaction():
        cursor = conn.execute(statement, [values[column] for column in COLUMNS])
    return cursor.rowcount == 1


def read_run_failures(conn: psycopg.Connection, *, limit: int = 50) -> list[RunFailure]:
    """The latest failures first."""
    rows = conn.execute(
        sql.SQL(
            "select run_id, job_name, failed_at, error, step_keys from {table}"
            " order by failed_at desc limit %s"
        ).format(table=sql.Identifier(TABLE.schema or "", TABLE.name)),
        (limit,),
    ).fetchall()
    return [RunFailure(row[0], row[1], row[2], row[3], tuple(row[4])) for row in rows]
