"""The response models that mirror a products table name its columns: a column renamed in
stockyard.db.catalogue fails here, not in a client."""

from __future__ import annotations

from collections.abc import Collection

from pydantic import BaseModel
from sqlalchemy import Table

from serving.schemas import (
    BacktestSummary,
    Forecast,
    ForecastPoint,
    Holding,
    ModelVersion,
    Recommendation,
)
from stockyard.db import catalogue


def fields(model: type[BaseModel], *, but: Collection[str] = ()) -> set[str]:
    return set(model.model_fields) - set(but)


def columns(table: Table) -> set[str]:
    return set(table.columns.keys())


def test_a_recommendation_is_a_row_of_the_table_with_the_stock_s_name_and_sector() -> None:
    assert fields(Recommendation, but={"company_name", "sector"}) == columns(catalogue.recommendations) - {
        "data_source",
        "created_at",
    }


def test_a_backtest_summary_has_every_metric_column() -> None:
    assert fields(BacktestSummary) <= columns(catalogue.backtests)
    assert set(catalogue.BACKTEST_METRICS) <= fields(BacktestSummary)


def test_a_model_version_is_a_row_of_the_table_without_the_dataset_fingerprint() -> None:
    assert fields(ModelVersion, but={"latest_backtest"}) == columns(catalogue.model_versions) - {
        "dataset_fingerprint"
    }


def test_a_forecast_and_its_points_are_columns_of_the_table() -> None:
    point = fields(ForecastPoint, but={"date"}) | {"target_date"}
    assert fields(Forecast, but={"points"}) | point <= columns(catalogue.forecasts)


def test_a_holding_is_a_column_pair_of_the_backtest_positions() -> None:
    assert fields(Holding) <= columns(catalogue.backtest_positions)
