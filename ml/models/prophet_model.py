"""Per-symbol Prophet models of the log adjusted close: price forecasts for the next trading days with
intervals, fitted in parallel worker processes (Prophet's optimizer runs one series at a time).

As a scorer, the model's prediction for a symbol on date d is the forecast return over the label horizon,
forecast price on the horizon-th trading date after d over the close on d, so it is evaluated with the same
cross-sectional metrics as the other families. Forecasts are made once per fit, from the fit's cutoff (the
last training or validation date) over every later date of the dataset and `forecast_days` trading days
past its end.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from mlflow.models.model import ModelInfo
from mlflow.pyfunc.model import PythonModel

from ml.config import ProphetConfig
from ml.datasets import CLOSE, Dataset
from ml.metrics import forecast_metrics
from ml.models.base import MODEL_ARTIFACT, pinned_requirements
from stockyard.calendar import trading_days

FORECAST_COLUMNS = ["date", "symbol", "yhat", "yhat_lower", "yhat_upper"]
# Prophet's additive components of the log price, whose movement over the forecast is the importance.
COMPONENTS = ("trend", "weekly", "yearly")
INPUT_EXAMPLE_SYMBOLS = 2

T = TypeVar("T")


@dataclass(frozen=True)
class _Series:
    symbol: str
    dates: np.ndarray
    log_close: np.ndarray


class ProphetModel:
    family: ClassVar[str] = "prophet"

    def __init__(self, config: ProphetConfig | None = None, models: dict[str, str] | None = None) -> None:
        self.config = config or ProphetConfig()
        # Symbol -> fitted model, serialized by prophet.serialize.model_to_json.
        self.models = models or {}
        # From the last fit: every date after its cutoff, in the dataset and `forecast_days` past its end.
        self.forecasts = pd.DataFrame(columns=[*FORECAST_COLUMNS, *COMPONENTS])

    def fit(self, dataset: Dataset, train: pd.DatetimeIndex, validation: pd.DatetimeIndex) -> None:
        cutoff = train.union(validation).max()
        frame = dataset.frame
        prices = frame.loc[(frame["date"] <= cutoff) & frame[CLOSE].notna(), ["date", "symbol", CLOSE]]
        series = [
            _Series(str(symbol), history["date"].to_numpy(), np.log(history[CLOSE].to_numpy()))
            for symbol, group in prices.groupby("symbol", sort=True)
            if len(history := group.tail(self.config.history_days)) >= self.config.min_history_days
            and history["date"].iloc[-1] == cutoff
        ]
        dates = dataset.dates
        future = dates[dates > cutoff].union(_next_trading_days(dates.max(), self.config.forecast_days))
        chunks = [
            series[first : first + self.config.symbols_per_task]
            for first in range(0, len(series), self.config.symbols_per_task)
        ]
        results = _in_parallel(
            _fit_and_forecast, [(self.config, chunk, future) for chunk in chunks], self._jobs
        )
        fitted = [item for chunk_result in results for item in chunk_result]
        self.models = {symbol: model for symbol, model, _ in fitted}
        self.forecasts = pd.concat([forecast for _, _, forecast in fitted], ignore_index=True)

    def predict(self, dataset: Dataset, dates: pd.DatetimeIndex) -> pd.Series:
        rows = dataset.rows(dates)
        calendar = dataset.dates.union(pd.DatetimeIndex(self.forecasts["date"].unique()))
        ahead = calendar.get_indexer(pd.DatetimeIndex(rows["date"])) + dataset.horizon
        target_dates = pd.DatetimeIndex(calendar[np.minimum(ahead, len(calendar) - 1)]).where(
            ahead < len(calendar)
        )
        forecast = self.forecasts.set_index(["date", "symbol"])["yhat"]
        expected = forecast.reindex(pd.MultiIndex.from_arrays([target_dates, rows["symbol"]])).to_numpy()
        return pd.Series(expected / rows[CLOSE].to_numpy() - 1, index=rows.index, name="prediction")

    def feature_importance(self, dataset: Dataset) -> pd.Series:
        """How much each component moves the forecast: the standard deviation of its contribution to the
        log price over the forecast dates, averaged over symbols."""
        present = [name for name in COMPONENTS if self.forecasts[name].notna().any()]
        movement = self.forecasts.groupby("symbol")[present].std().mean()
        total = movement.sum()
        return movement / total if total > 0 else movement

    def forecast_metrics(self, dataset: Dataset) -> dict[str, float]:
        """MAPE, RMSE and interval coverage of the first `forecast_days` dates after the cutoff."""
        horizon = pd.DatetimeIndex(self.forecasts["date"].unique()).sort_values()[: self.config.forecast_days]
        actual = dataset.rows(horizon)[["date", "symbol", CLOSE]].rename(columns={CLOSE: "actual"})
        scored = self.forecasts.merge(actual, on=["date", "symbol"], how="inner")
        return forecast_metrics(scored)

    def forecast(self, symbols: Sequence[str] | None = None) -> pd.DataFrame:
        """The next `forecast_days` trading days after each saved model's history, from the saved models."""
        chosen = (
            sorted(self.models)
            if symbols is None
            else [s for s in dict.fromkeys(symbols) if s in self.models]
        )
        saved = [(symbol, self.models[symbol]) for symbol in chosen]
        chunks = [
            saved[first : first + self.config.symbols_per_task]
            for first in range(0, len(saved), self.config.symbols_per_task)
        ]
        results = _in_parallel(_forecast_saved, [(self.config, chunk) for chunk in chunks], self._jobs)
        frames = [frame for chunk_result in results for frame in chunk_result]
        if not frames:
            return pd.DataFrame(columns=FORECAST_COLUMNS)
        return pd.concat(frames, ignore_index=True)[FORECAST_COLUMNS]

    def log_model(self, dataset: Dataset, *, registered_model_name: str | None) -> ModelInfo:
        example = pd.DataFrame({"symbol": sorted(self.models)[:INPUT_EXAMPLE_SYMBOLS]})
        signature = infer_signature(example, self.forecast(example["symbol"].tolist()))
        with tempfile.TemporaryDirectory() as folder:
            models = Path(folder) / "models"
            models.mkdir()
            for symbol, model in self.models.items():
                (models / f"{symbol}.json").write_text(model)
            spec = Path(folder) / "spec.json"
            spec.write_text(json.dumps({"config": asdict(self.config)}))
            info: ModelInfo = mlflow.pyfunc.log_model(
                name=MODEL_ARTIFACT,
                python_model=ProphetPyfunc(),
                artifacts={"models": str(models), "spec": str(spec)},
                signature=signature,
                input_example=example,
                registered_model_name=registered_model_name,
                pip_requirements=pinned_requirements("prophet", "pandas", "numpy"),
            )
        return info

    @classmethod
    def load(cls, model_uri: str) -> Self:
        wrapper = mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
        if not isinstance(wrapper, ProphetPyfunc) or wrapper.model is None:
            raise TypeError(f"{model_uri} is not a Prophet model")
        return cls(wrapper.model.config, wrapper.model.models)

    @classmethod
    def from_files(cls, models: Path, spec: Path) -> ProphetModel:
        config = ProphetConfig(**json.loads(spec.read_text())["config"])
        return cls(config, {path.stem: path.read_text() for path in sorted(models.glob("*.json"))})

    @property
    def _jobs(self) -> int:
        return self.config.n_jobs or os.cpu_count() or 1


class ProphetPyfunc(PythonModel):
    """The MLflow face of the Prophet family: a frame with a `symbol` column in, the next trading days'
    price forecasts (date, symbol, yhat, yhat_lower, yhat_upper) out."""

    model: ProphetModel | None = None

    def load_context(self, context: Any) -> None:
        self.model = ProphetModel.from_files(
            Path(context.artifacts["models"]), Path(context.artifacts["spec"])
        )

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        if self.model is None:
            raise RuntimeError("load_context has not run")
        return self.model.forecast(model_input["symbol"].astype(str).tolist())


def _fit_and_forecast(
    config: ProphetConfig, series: list[_Series], future: pd.DatetimeIndex
) -> list[tuple[str, str, pd.DataFrame]]:
    """Worker: fit each series' model and forecast `future`; (symbol, serialized model, forecast)."""
    with _quiet_prophet():
        from prophet import Prophet
        from prophet.serialize import model_to_json

        results = []
        for item in series:
            model = Prophet(
                interval_width=config.interval_width,
                uncertainty_samples=config.uncertainty_samples,
                changepoint_prior_scale=config.changepoint_prior_scale,
                yearly_seasonality=config.yearly_seasonality,
                weekly_seasonality=config.weekly_seasonality,
                daily_seasonality=False,
            )
            model.fit(pd.DataFrame({"ds": item.dates, "y": item.log_close}))
            forecast = _forecast(model, future, config.seed).assign(symbol=item.symbol)
            results.append((item.symbol, model_to_json(model), forecast))
        return results


def _forecast_saved(config: ProphetConfig, saved: list[tuple[str, str]]) -> list[pd.DataFrame]:
    """Worker: forecast the `forecast_days` trading days after each saved model's history."""
    with _quiet_prophet():
        from prophet.serialize import model_from_json

        frames = []
        for symbol, serialized in saved:
            model: Any = model_from_json(serialized)
            future = _next_trading_days(pd.Timestamp(model.history["ds"].max()), config.forecast_days)
            frames.append(_forecast(model, future, config.seed).assign(symbol=symbol))
        return frames


def _forecast(model: Any, dates: pd.DatetimeIndex, seed: int) -> pd.DataFrame:
    """Prices (back from log prices) with their interval, and the components in log units."""
    np.random.seed(seed)  # Prophet samples the intervals from numpy's global generator.
    raw = model.predict(pd.DataFrame({"ds": dates}))
    forecast = pd.DataFrame({"date": pd.DatetimeIndex(raw["ds"]).astype("datetime64[ns]")})
    for column in ("yhat", "yhat_lower", "yhat_upper"):
        forecast[column] = np.exp(raw[column].to_numpy())
    for component in COMPONENTS:
        forecast[component] = raw[component].to_numpy() if component in raw else np.nan
    return forecast


def _next_trading_days(after: pd.Timestamp, count: int) -> pd.DatetimeIndex:
    first = (after + timedelta(days=1)).date()
    # Two calendar weeks per five sessions covers any run of holidays.
    sessions = trading_days(first, first + timedelta(days=3 * count + 14))[:count]
    return pd.DatetimeIndex(sessions, dtype="datetime64[ns]")


@contextmanager
def _quiet_prophet() -> Iterator[None]:
    """Silence what Prophet and its Stan backend print on every fit (progress lines, the missing optional
    plotly, pandas deprecations inside Prophet's own code)."""
    logging.getLogger("prophet.plot").setLevel(logging.CRITICAL)
    stan_logger = logging.getLogger("cmdstanpy")
    if not stan_logger.hasHandlers():
        # cmdstanpy installs its own console handler (and DEBUG level) on a logger without handlers.
        stan_logger.addHandler(logging.NullHandler())
    stan_logger.setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"prophet\.")
        yield


def _in_parallel(function: Callable[..., T], tasks: list[tuple[Any, ...]], jobs: int) -> list[T]:
    """`function(*task)` for each task, in `jobs` fresh processes (spawned: forking a process that holds
    torch or XGBoost threads can deadlock), or in this one for a single task."""
    if jobs <= 1 or len(tasks) <= 1:
        return [function(*task) for task in tasks]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=context) as pool:
        return list(pool.map(function, *zip(*tasks, strict=True)))
