"""The dbt project built on a small synthetic market in throwaway databases.

One full `dbt build` is shared by the whole session (`built_warehouse`); dbt runs in-process, through the
same command line as the Dagster assets (cli.dbt_cli), pointed at a database by the STOCKYARD_PG_*
variables profiles.yml reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dbt.support import load_raw_market, run_dbt
from tests.dbt.synthetic_market import RawMarket, generate_market
from tests.support import throwaway_database


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
