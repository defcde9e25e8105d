"""Prophet's forecasts as products.forecasts rows, and their writer."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import psycopg
import pytest

from ml.config import ProphetConfig
from ml.datasets import Dataset
from ml.forecasts import forecast_rows
from ml.models.prophet_model import ProphetModel
from stockyard.calendar import trading_days
from stockyard.products import FORECAST_COLUMNS, write_forecasts

SYMBOLS = ["S00", "S01"]


@pytest.fixture(scope="module")
def prophet(market: Dataset) -> ProphetModel:
    frame = market.frame.loc[market.frame["symbol"].isin(SYMBOLS)].reset_index(drop=True)
    dataset = Dataset(frame, market.features, market.config, market.window, market.fingerprint)
    model = ProphetModel(
        ProphetConfig(history_days=120, min_history_days=60, uncertainty_samples=50, n_jobs=1)
    )
    model.fit(dataset, dataset.dates[:-20], dataset.dates[-20:])
    return model


@pytest.fixture(scope="module")
def forecasts(prophet: ProphetModel) -> pd.DataFrame:
    return forecast_rows(prophet, model_name="stockyard-prophet", model_version="4")


def test_next_21_trading_days_per_symbol(forecasts: pd.DataFrame, market: Dataset) -> None:
    assert list(forecasts.columns) == list(FORECAST_COLUMNS)
    last = market.dates[-1].date()
    sessions = trading_days(last + timedelta(days=1), last + timedelta(days=60))[:21].date.tolist()
    for symbol in SYMBOLS:
        rows = forecasts.loc[forecasts["symbol"] == symbol]
        assert rows["step"].tolist() == list(range(1, 22))
        assert rows["target_date"].tolist() == sessions
        assert set(rows["data_date"]) == {last}
    assert (forecasts["lower_close"] < forecasts["predicted_close"]).all()
    assert (forecasts["predicted_close"] < forecasts["upper_close"]).all()
    assert set(forecasts["interval_width"]) == {0.8}
    assert set(forecasts["model_version"]) == {"4"}


def test_only_the_symbols_asked(prophet: ProphetModel) -> None:
    rows = forecast_rows(prophet, model_name="stockyard-prophet", model_version="4", symbols=["S01", "ZZZ"])
    assert set(rows["symbol"]) == {"S01"}
    with pytest.raises(ValueError, match="no model for any of the symbols asked: ZZZ"):
        forecast_rows(prophet, model_name="stockyard-prophet", model_version="4", symbols=["ZZZ"])


def test_written_and_replaced(conn: psycopg.Connection, forecasts: pd.DataFrame) -> None:
    assert write_forecasts(conn, forecasts, data_source="synthetic") == 42
    conn.commit()
    revised = forecasts.assign(predicted_close=forecasts["predicted_close"] * 1.01, model_version="5")
    write_forecasts(conn, revised.loc[revised["symbol"] == "S00"], data_source="synthetic")
    stored = pd.DataFrame(
        conn.execute(
            "select symbol, step, predicted_close, model_version, data_source from products.forecasts"
        ).fetchall(),
        columns=["symbol", "step", "predicted_close", "model_version", "data_source"],
    ).sort_values(["symbol", "step"], ignore_index=True)
    assert len(stored) == 42 and set(stored["data_source"]) == {"synthetic"}
    assert stored.groupby("symbol")["model_version"].unique().map(list).to_dict() == {
        "S00": ["5"],
        "S01": ["4"],
    }
    np.testing.assert_allclose(
        stored["predicted_close"],
        revised["predicted_close"].where(revised["symbol"] == "S00", forecasts["predicted_close"]),
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.assign(step=f["step"].where(f.index != 3, 7)), "steps must run 1..h"),
        (lambda f: f.assign(lower_close=f["upper_close"] + 1), "lower <= predicted <= upper"),
        (lambda f: f.assign(predicted_close=np.nan), "predicted_close must be finite"),
        (
            lambda f: f.assign(target_date=f["target_date"].where(f.index != 0, f["data_date"])),
            "target_date is not after data_date",
        ),
        (lambda f: pd.concat([f, f.iloc[:1]]), "more than one row per data date"),
        (lambda f: f.assign(model_version=f.index.astype(str)), "from one model version"),
        (lambda f: f.drop(columns="step"), "missing column"),
    ],
)
def test_bad_forecasts_are_named(conn: psycopg.Connection, forecasts: pd.DataFrame, change, message) -> None:
    with pytest.raises(ValueError, match=message):
        write_forecasts(conn, change(forecasts), data_source="synthetic")
