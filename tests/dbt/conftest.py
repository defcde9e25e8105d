"""The dbt project built on a small synthetic market in throwaway databases.

One full `dbt build` is shared by the whole session (`built_warehouse`); dbt runs in-process, through the
same command line as the Dagster assets (cli.dbt_cli), pointed at a database by the STOCKYARD_PG_*
variables profiles.yml reads.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dbt.cli.main import dbtRunnerResult

from cli import dbt_cli
from stockyard import warehouse
from stockyard.endpoints import dbt_pointed_at
from stockyard.settings import PROJECT_ROOT
from tests.conftest import throwaway_database
from tests.dbt.synthetic_market import RawMarket, generate_market

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


@pytest.fixture(scope="session")
def market() -> RawMarket:
    return generate_market()


@pytest.fixture(scope="session")
def dbt_target_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dbt's target and log directory for the session (shared, so later invocations parse partially)."""
    return tmp_path_factory.mktemp("dbt_target")


@pytest.fixture(scope="session")
def built_warehouse(market: RawMarket, dbt_target_dir: Path) -> Iterator[str]:
    """A database holding the market, on which `dbt build` (models, data tests, unit tests) succeeded."""
    with throwaway_database() as url:
        load_raw_market(url, market)
        run_dbt(["build"], database_url=url, target_dir=dbt_target_dir)
        yield url
