"""One Dagster resource per outside system, configured from the environment when definitions load."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
import psycopg
import redis
from pydantic import Field

from ml.config import MLSettings, TrackingConfig
from stockyard.api_cache import API_CACHE_PREFIX, purge_api_cache
from stockyard.db.migrate import upgrade
from stockyard.marketdata import build_provider
from stockyard.marketdata.base import MarketDataProvider
from stockyard.marketdata.settings import MarketDataSettings, get_market_data_settings

if TYPE_CHECKING:
    from mlflow import MlflowClient


@functools.cache
def _upgraded(database_url: str) -> None:
    upgrade(database_url)


class WarehouseResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The PostgreSQL warehouse: the raw schema the ingestion assets write and dbt reads, and the products.

    Its first connection in a process upgrades the database to stockyard.db.catalogue (`stockyard db
    upgrade`), so a step never finds a table missing or a column older than the code."""

    database_url: str = Field(description="PostgreSQL URL of the warehouse database.")

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection]:
        _upgraded(self.database_url)
        with psycopg.connect(self.database_url) as conn:
            yield conn


class MarketDataResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The market-data provider (or fallback chain) the ingestion assets read from, as the market-data section
    of the settings (STOCKYARD_MARKET_DATA_*) configures it when a step asks for it."""

    overrides: dict[str, str] = Field(
        default_factory=dict,
        description="Fields of the market-data section set here rather than by the environment, by field "
        "name, valued as in the environment (a test's small market).",
    )

    def settings(self) -> MarketDataSettings:
        if not self.overrides:
            return get_market_data_settings()
        # Validated as the environment's strings are, over the environment's other fields.
        fields: dict[str, Any] = dict(self.overrides)
        return MarketDataSettings(**fields)

    def provider(self) -> MarketDataProvider:
        return build_provider(self.settings())


class MLflowResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The MLflow tracking store and model registry the training assets log to."""

    tracking_uri: str = Field(
        description="A database URI (the <warehouse>_mlflow database) or an MLflow server."
    )
    artifact_root: str | None = Field(
        default=None, description="Folder for the artifacts of experiments created here; None for a server."
    )
    ui_url: str = Field(default="http://127.0.0.1:5000", description="The MLflow UI that shows these runs.")

    @classmethod
    def from_settings(cls, ml: MLSettings) -> MLflowResource:
        tracking = TrackingConfig.from_settings(ml=ml)
        return cls(
            tracking_uri=tracking.tracking_uri,
            artifact_root=str(tracking.artifact_root) if tracking.artifact_root else None,
            ui_url=tracking.ui_url,
        )

    def tracking(self) -> TrackingConfig:
        return TrackingConfig(
            tracking_uri=self.tracking_uri,
            artifact_root=Path(self.artifact_root) if self.artifact_root else None,
            ui_url=self.ui_url,
        )

    def client(self) -> MlflowClient:
        """A client on the store, with MLflow's own tracking and registry URIs pointed at it too (loading a
        `models:/` URI goes through those)."""
        from ml.tracking import configure_tracking

        return configure_tracking(self.tracking())

    def run_url(self, client: MlflowClient, run_id: str) -> str:
        """The UI's page of a run."""
        from ml.tracking import run_url

        return run_url(self.tracking(), client.get_run(run_id).info.experiment_id, run_id)


class ApiCacheResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The API's Redis cache, which the dbt and product assets purge once they have written new rows."""

    redis_url: str = Field(description="Redis URL the API caches its answers in.")
    prefix: str = Field(default=API_CACHE_PREFIX, description="Key prefix of the API's cache entries.")

    def purge(self) -> int | None:
        """Delete the API's cached answers; how many, or None when Redis is unreachable. The API's keys carry
        the data date and model versions, so a missed purge leaves stale entries unreachable, not served."""
        try:
            return purge_api_cache(self.redis_url, prefix=self.prefix)
        except redis.RedisError as error:
            dg.get_dagster_logger().warning("could not purge the API cache at %s: %s", self.redis_url, error)
            return None
