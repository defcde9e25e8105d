"""Prophet's price forecasts as rows of products.forecasts: per symbol, the next `forecast_days` trading days
after the data date with the predicted close and its interval.

Forecasts start from each saved model's history: Prophet cannot take in new prices without refitting, so the
data date of a symbol's rows is the last trading day its registered model was fitted on (the training
window's end), whatever day the forecast is asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import numpy as np
import pandas as pd

from ml.models.prophet_model import ProphetModel
from stockyard.calendar import trading_days
from stockyard.products import FORECAST_COLUMNS


def forecast_rows(
    model: ProphetModel, *, model_name: str, model_version: str, symbols: Sequence[str] | None = None
) -> pd.DataFrame:
    """The forecast of every symbol the model has (or of `symbols`, those it has), in FORECAST_COLUMNS:
    the columns of products.forecasts but data_source, sorted by symbol and target date."""
    if not model.models:
        raise ValueError(f"{model_name} v{model_version} has no fitted symbol models to forecast with")
    forecast = model.forecast(symbols)
    if forecast.empty:
        asked = ", ".join(list(symbols or ())[:5])
        raise ValueError(f"{model_name} v{model_version} has no model for any of the symbols asked: {asked}")
    forecast = forecast.sort_values(["symbol", "date"], ignore_index=True)
    step = forecast.groupby("symbol").cumcount() + 1
    first_targets = forecast.loc[step == 1].set_index("symbol")["date"]
    data_dates = pd.Series(
        {symbol: _previous_trading_day(first) for symbol, first in first_targets.items()}, dtype="object"
    )
    rows = pd.DataFrame(
        {
            "data_date": forecast["symbol"].map(data_dates),
            "symbol": forecast["symbol"].astype(str),
            "target_date": pd.DatetimeIndex(forecast["date"]).date,
            "step": step.astype(np.int64),
            "predicted_close": forecast["yhat"].astype(np.float64),
            "lower_close": forecast["yhat_lower"].astype(np.float64),
            "upper_close": forecast["yhat_upper"].astype(np.float64),
            "interval_width": model.config.interval_width,
            "model_name": model_name,
            "model_version": model_version,
        }
    )
    return rows.loc[:, list(FORECAST_COLUMNS)]


def _previous_trading_day(day: pd.Timestamp) -> date:
    # Two calendar weeks back always hold a session.
    sessions = trading_days((day - timedelta(days=14)).date(), (day - timedelta(days=1)).date())
    previous: date = sessions[-1].date()
    return previous
