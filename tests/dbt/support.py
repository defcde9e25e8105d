"""Helpers of the dbt tests and of the tests that build marts with dbt: running dbt, loading raw rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dbt.cli.main import dbtRunnerResult

from cli import dbt_cli
from stockyard import warehouse
from stockyard.endpoints import dbt_pointed_at
from stockyard.settings import PROJECT_ROOT
from tests.dbt.synthetic_market import RawMarket

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"


def run_dbt(args: Sequence[str], *, database_url: str, target_dir: Path) -> None:
    """Run a dbt command on `database_url`; fail the test with the failing nodes' messages."""
    result = invoke_dbt(args, database_url=database_url, target_dir=target_dir)
    if result.success:
        return
    failures = [
        f"{node.node.unique_id}: {node.status}: {node.message}"
        for node in getattr(result.result, "results", [])
        if str(node.status) not in ("success", "pass")
    ]
    pytest.fail(f"dbt {' '.join(args)} failed: {result.exception or ''}\n" + "\n".join(failures))


def invoke_dbt(args: Sequence[str], *, database_url: str, target_dir: Path) -> dbtRunnerResult:
    """Run a dbt command on `database_url` and return its result, failed or not."""
    locations = {
        "--project-dir": DBT_PROJECT_DIR,
        "--profiles-dir": DBT_PROJECT_DIR,
        "--target-path": target_dir,
        "--log-path": target_dir / "logs",
    }
    flags = [part for flag, path in locations.items() for part in (flag, str(path))]
    with dbt_pointed_at(database_url):
        return dbt_cli.invoke([*args, *flags, "--quiet"])


def load_raw_market(database_url: str, market: RawMarket) -> None:
    """Append the market's rows to the raw tables."""
    lineage = {"provider": "synthetic-test", "loaded_at": datetime.now(UTC)}
    tables = [
        ("raw.daily_prices", market.bars, warehouse.BAR_TABLE_COLUMNS),
        ("raw.corporate_actions", market.actions, warehouse.ACTION_TABLE_COLUMNS),
        # As load_stocks does: metadata without a mapped sector keeps its sector as given.
        (
            "raw.stocks",
            market.stocks.assign(sector_as_given=market.stocks["sector"]),
            warehouse.STOCK_TABLE_COLUMNS,
        ),
    ]
    with warehouse.connect(database_url) as conn:
        for table, frame, columns in tables:
            warehouse.copy_frame(conn, table, frame.assign(**lineage), columns)
