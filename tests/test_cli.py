"""The `stockyard` command, run as a user runs it, against the real services."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from stockyard.services import sibling_database_url

STOCKYARD = [sys.executable, "-m", "stockyard.cli"]


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(STOCKYARD + args, env=env, capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture
def cli_env(empty_database_url: str, redis_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": empty_database_url,
        "REDIS_URL": redis_url,
        "STOCKYARD_STATE_DIR": str(tmp_path / "state"),
        "MARKET_DATA_START": "2025-06-02",
        "SAMPLE_SYMBOLS": "12",
    }


def test_services_status_names_the_configured_services(cli_env: dict[str, str]) -> None:
    result = run(["services", "status"], cli_env)
    assert result.returncode == 0, result.stderr
    assert "external" in result.stdout and cli_env["DATABASE_URL"] in result.stdout


@pytest.mark.slow
def test_materialize_builds_the_whole_graph_through_the_dagster_instance(cli_env: dict[str, str]) -> None:
    result = run(["materialize", "--start", "2025-06-02", "--end", "2025-06-13"], cli_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "materializing 2 asset(s) for 2025-06-02...2025-06-13" in result.stdout

    with psycopg.connect(cli_env["DATABASE_URL"]) as conn:
        raw_days = conn.execute("select count(distinct date) from raw.daily_prices").fetchone()
        feature_days = conn.execute("select count(distinct date) from marts.fct_stock_features").fetchone()
        latest = conn.execute("select count(*) from marts.fct_latest_prices").fetchone()
    assert raw_days == feature_days == (10,)
    assert latest is not None and latest[0] > 0
    with psycopg.connect(sibling_database_url(cli_env["DATABASE_URL"], "_dagster")) as conn:
        statuses = {row[0] for row in conn.execute("select status from runs")}
        checks = conn.execute("select count(*) from asset_check_executions").fetchone()
    assert statuses == {"SUCCESS"}, "every stage ran as a run recorded in PostgreSQL run storage"
    assert checks is not None and checks[0] > 0, "dbt tests and quality checks ran as asset checks"


def test_materialize_rejects_a_bad_date(cli_env: dict[str, str]) -> None:
    result = run(["materialize", "--start", "2025-13-01"], cli_env)
    assert result.returncode == 2
    assert "'2025-13-01' is not a date" in result.stderr
