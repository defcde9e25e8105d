"""Qlib beside the benchmark: its Alpha158 features with its LightGBM and XGBoost models, fitted on the
benchmark's own folds, their predictions handed back to be scored by the benchmark's code.

Qlib 0.9.7 needs pandas 2 (the project runs pandas 3) and LightGBM, so it runs in a virtual environment of
its own, created once under the state directory, as a child process (ml/qlib_worker.py) that reads a folder
in Qlib's binary format and writes its predictions as Parquet. The prices are the warehouse's adjusted bars
(marts.fct_daily_prices), converted as Qlib's `scripts/dump_bin.py` does: a calendar, an instruments list,
and per symbol and field a little-endian float32 file whose first value is the symbol's first index in the
calendar, followed by its values on every calendar date from there to its last (NaN where it has none).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg

from ml.datasets import PRICES_TABLE
from ml.splits import Fold

QLIB_REQUIREMENTS = ("pyqlib==0.9.7", "pandas==2.2.3", "lightgbm", "xgboost", "pyarrow")
WORKER = Path(__file__).with_name("qlib_worker.py")
# The fields Alpha158 reads ($open, $high, $low, $close, $volume, $vwap) and Qlib's adjustment factor.
QLIB_FIELDS = ("open", "high", "low", "close", "volume", "vwap", "factor")
QLIB_ROWS = {"lightgbm": "qlib-alpha158-lightgbm", "xgboost": "qlib-alpha158-xgboost"}


def qlib_predictions(
    database_url: str,
    folds: Sequence[Fold],
    *,
    state_dir: Path,
    threads: int | None,
    progress: Callable[[str], None] = print,
) -> dict[str, pd.DataFrame]:
    """Qlib's rows: row name -> predictions (date, symbol, prediction) on every fold's test dates."""
    python = ensure_environment(state_dir / "venv", progress)
    with psycopg.connect(database_url) as conn:
        prices = load_adjusted_prices(conn)
    data_dir = state_dir / "data"
    write_qlib_data(prices, data_dir)
    request = state_dir / "request.json"
    output = state_dir / "predictions.parquet"
    output.unlink(missing_ok=True)
    request.write_text(
        json.dumps(
            {
                "data_dir": str(data_dir),
                "output": str(output),
                "mlflow_uri": f"sqlite:///{state_dir / 'qlib-mlruns.db'}",
                "threads": threads or 1,
                "folds": [fold_segments(fold) for fold in folds],
            },
            indent=2,
        )
    )
    progress(f"qlib: Alpha158 + LightGBM and XGBoost on {len(folds)} test years ({python})")
    subprocess.run([str(python), str(WORKER), str(request)], check=True)
    frame = pd.read_parquet(output)
    frame["date"] = pd.to_datetime(frame["date"]).astype("datetime64[ns]")
    return {
        QLIB_ROWS[str(model)]: group.loc[:, ["date", "symbol", "prediction"]].reset_index(drop=True)
        for model, group in frame.groupby("model", sort=True)
    }


def ensure_environment(venv: Path, progress: Callable[[str], None] = print) -> Path:
    """The Python of a virtual environment holding QLIB_REQUIREMENTS, created (from PyPI) when missing or
    made for other requirements."""
    python = venv / "bin" / "python"
    marker = venv / "stockyard-requirements.txt"
    wanted = "\n".join(QLIB_REQUIREMENTS)
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    progress(f"qlib: creating its environment in {venv} ({', '.join(QLIB_REQUIREMENTS)}); a few minutes")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *QLIB_REQUIREMENTS], check=True)
    marker.write_text(wanted)
    return python


def load_adjusted_prices(conn: psycopg.Connection) -> pd.DataFrame:
    """Adjusted bars (date, symbol, open, high, low, close, volume, factor) as Qlib wants them: prices
    adjusted, volume in adjusted shares, factor the ratio of adjusted to traded close."""
    rows = conn.execute(
        "select date, symbol, adj_open, adj_high, adj_low, adj_close, adj_volume,"
        f" adj_close / nullif(close, 0) from {PRICES_TABLE} order by symbol, date"
    ).fetchall()
    frame = pd.DataFrame(rows, columns=["date", "symbol", "open", "high", "low", "close", "volume", "factor"])
    frame["date"] = pd.to_datetime(frame["date"]).astype("datetime64[ns]")
    numeric = ["open", "high", "low", "close", "volume", "factor"]
    frame[numeric] = frame[numeric].astype(np.float64)
    return frame


def write_qlib_data(prices: pd.DataFrame, folder: Path) -> None:
    """`prices` (date, symbol and the QLIB_FIELDS but vwap) in Qlib's binary layout under `folder`.

    The data has no traded value, so $vwap is the bar's typical price (high + low + close) / 3, as Qlib's
    own collectors do where a source lacks it.
    """
    calendar = pd.DatetimeIndex(sorted(prices["date"].unique()))
    (folder / "calendars").mkdir(parents=True, exist_ok=True)
    (folder / "instruments").mkdir(parents=True, exist_ok=True)
    (folder / "calendars" / "day.txt").write_text("".join(f"{day:%Y-%m-%d}\n" for day in calendar))
    prices = prices.assign(vwap=(prices["high"] + prices["low"] + prices["close"]) / 3)
    spans = []
    for symbol, bars in prices.groupby("symbol", sort=True):
        bars = bars.set_index("date").sort_index()
        first, last = bars.index[0], bars.index[-1]
        spans.append(f"{symbol}\t{first:%Y-%m-%d}\t{last:%Y-%m-%d}\n")
        start = int(calendar.searchsorted(first))
        dates = calendar[start : int(calendar.searchsorted(last)) + 1]
        directory = folder / "features" / str(symbol).lower()
        directory.mkdir(parents=True, exist_ok=True)
        for name in QLIB_FIELDS:
            values = bars[name].reindex(dates).to_numpy(np.float64)
            np.concatenate([np.array([start], np.float64), values]).astype("<f4").tofile(
                directory / f"{name}.day.bin"
            )
    (folder / "instruments" / "all.txt").write_text("".join(spans))


def read_qlib_field(folder: Path, symbol: str, name: str) -> pd.Series:
    """One field of one symbol as Qlib's data files hold it, dated by the calendar."""
    calendar = pd.DatetimeIndex(pd.read_csv(folder / "calendars" / "day.txt", header=None)[0])
    raw = np.fromfile(folder / "features" / symbol.lower() / f"{name}.day.bin", dtype="<f4")
    start = int(raw[0])
    return pd.Series(raw[1:], index=calendar[start : start + len(raw) - 1], name=name)


def fold_segments(fold: Fold) -> dict[str, list[str]]:
    """A fold's train, validation and test spans as Qlib's DatasetH segments (first and last date)."""
    return {
        name: [f"{dates.min():%Y-%m-%d}", f"{dates.max():%Y-%m-%d}"]
        for name, dates in (("train", fold.train), ("valid", fold.validation), ("test", fold.test))
    }
