"""Fixtures of the ML tests.

Markets are built for real, once per session: the sample provider -> warehouse.ingest -> `dbt build` into
a throwaway database, then read back with ml.datasets.load_dataset. Sized for the CI budget: 50 symbols
over three years. Models that several tests look at are trained once, in session fixtures, and logged to
one throwaway MLflow store (a PostgreSQL database of its own, artifacts in a temporary folder).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ml.config import TrackingConfig
from ml.datasets import Dataset
from stockyard.endpoints import sibling_database_url
from tests.ml.support import (
    build_market,
    random_walk_provider,
    read_dataset,
    signal_provider,
)
from tests.support import throwaway_database


@pytest.fixture(scope="session")
def random_walk_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The sample market with its signal off: a pure random walk."""
    yield from build_market(tmp_path_factory.mktemp("dbt-random-walk"), random_walk_provider())


@pytest.fixture(scope="session")
def signal_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The sample market with its momentum signal on."""
    yield from build_market(tmp_path_factory.mktemp("dbt-signal"), signal_provider())


@pytest.fixture(scope="session")
def random_walk_dataset(random_walk_database: str) -> Dataset:
    return read_dataset(random_walk_database)


@pytest.fixture(scope="session")
def signal_dataset(signal_database: str) -> Dataset:
    return read_dataset(signal_database)


@pytest.fixture(scope="session")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackingConfig]:
    """A throwaway MLflow store: the database `<name>_mlflow` beside a throwaway warehouse."""
    with throwaway_database() as url:
        yield TrackingConfig.for_database(
            sibling_database_url(url, "_mlflow"), artifact_root=tmp_path_factory.mktemp("mlflow-artifacts")
        )
