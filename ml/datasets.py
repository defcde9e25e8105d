"""Training frames from the dbt marts: features of `marts.fct_stock_features` (or the marts of another
feature set, ml.config.FEATURE_SETS), the forward excess return of `marts.fct_forward_returns` as the
target, both normalized across the symbols of each date.

A dataset carries a fingerprint (a hash of the query, the date window and the raw layer's last load time) so
every run records which data it saw.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv

from ml.config import DatasetConfig
from stockyard.db.copy import copy_file
from stockyard.features import stock_features

FEATURES_TABLE = "marts.fct_stock_features"
FORWARD_RETURNS_TABLE = "marts.fct_forward_returns"
PRICES_TABLE = "marts.fct_daily_prices"

BOOKKEEPING_COLUMNS = ("symbol", "date", "history_days", "loaded_at")
# Price levels in back-adjusted dollars: a later split or dividend rescales them, so their value on a date
# carries news from after it. They enter as ratios to the adjusted close of the same date instead. The
# model's yml marks them (stockyard.features).
PRICE_LEVEL_COLUMNS = tuple(feature.name for feature in stock_features() if feature.price_level)
EXCLUDED_COLUMNS = frozenset(BOOKKEEPING_COLUMNS + PRICE_LEVEL_COLUMNS)
NUMERIC_TYPES = ("double precision", "real", "numeric", "integer", "bigint", "smallint")

# Columns of a dataset frame besides the features.
CLOSE = "close"  # adjusted close, for price models and scale-free ratios
TARGET = "target"  # forward excess return over the horizon, as is
LABEL = "label"  # the target normalized across the date's symbols, what models are trained on


@dataclass(frozen=True)
class DateWindow:
    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"window end {self.end} is before its start {self.start}")

    def __str__(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


@dataclass(frozen=True)
class Dataset:
    """One row per (date, symbol), sorted by date then symbol: `date`, `symbol`, `close`, the features
    (normalized per date), `target` and `label` (missing for the last `horizon` dates)."""

    frame: pd.DataFrame
    features: tuple[str, ...]
    config: DatasetConfig
    window: DateWindow
    fingerprint: str
    # Built from a made-up market (the sample provider): what is learnt from it says nothing about stocks.
    synthetic: bool = False

    @property
    def horizon(self) -> int:
        return self.config.horizon

    @cached_property
    def dates(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.frame["date"].unique())

    @cached_property
    def labelled_dates(self) -> pd.DatetimeIndex:
        """Dates on which the target is known for at least one symbol: the ones splits are made of."""
        return pd.DatetimeIndex(self.frame.loc[self.frame[TARGET].notna(), "date"].unique())

    def rows(self, dates: pd.DatetimeIndex) -> pd.DataFrame:
        return self.frame.loc[self.frame["date"].isin(dates)]


def feature_columns(conn: psycopg.Connection, features_table: str = FEATURES_TABLE) -> list[str]:
    """Every numeric column of the features mart that is not excluded, with the price levels as ratios."""
    schema, table = features_table.split(".")
    rows = conn.execute(
        """
        select column_name, data_type from information_schema.columns
        where table_schema = %s and table_name = %s
        order by ordinal_position
        """,
        (schema, table),
    ).fetchall()
    if not rows:
        raise LookupError(f"{features_table} does not exist: build the dbt marts first")
    numeric = [name for name, data_type in rows if data_type in NUMERIC_TYPES]
    ratios = [f"{name}_to_close" for name in numeric if name in PRICE_LEVEL_COLUMNS]
    return [name for name in numeric if name not in EXCLUDED_COLUMNS] + ratios


def dataset_query(features: Mapping[str, Sequence[str]], horizon: int) -> str:
    """The query of a dataset: features (features mart -> its columns; the marts joined on symbol and date),
    adjusted close and target of the dates between two parameters.

    Features are sent as `real`: they are kept as float32, and PostgreSQL writes half the text for them.
    """
    aliases = {table: f"features_{index}" if index else "features" for index, table in enumerate(features)}
    selected = [
        f"({aliases[table]}.{name[: -len('_to_close')]} / nullif(prices.adj_close, 0))::real as {name}"
        if name.endswith("_to_close") and name[: -len("_to_close")] in PRICE_LEVEL_COLUMNS
        else f"{aliases[table]}.{name}::real as {name}"
        for table, names in features.items()
        for name in names
    ]
    columns = ",\n    ".join(
        [
            "features.date",
            "features.symbol",
            f"prices.adj_close as {CLOSE}",
            *selected,
            f"forward.excess_forward_return_{horizon}d as {TARGET}",
        ]
    )
    first, *others = features
    joins = "".join(
        f"inner join {table} as {aliases[table]}\n"
        f"    on features.symbol = {aliases[table]}.symbol and features.date = {aliases[table]}.date\n"
        for table in others
    )
    return (
        f"select\n    {columns}\n"
        f"from {first} as features\n"
        f"inner join {PRICES_TABLE} as prices\n"
        "    on features.symbol = prices.symbol and features.date = prices.date\n"
        f"{joins}"
        f"left join {FORWARD_RETURNS_TABLE} as forward\n"
        "    on features.symbol = forward.symbol and features.date = forward.date\n"
        "where features.date between %s and %s\n"
        "order by features.date, features.symbol"
    )


def last_load_time(conn: psycopg.Connection) -> datetime | None:
    """When the raw prices or corporate actions the marts are built from last changed."""
    row = conn.execute(
        """
        select greatest(
            (select max(loaded_at) from raw.daily_prices),
            (select max(loaded_at) from raw.corporate_actions)
        )
        """
    ).fetchone()
    return row[0] if row else None


def market_is_synthetic(conn: psycopg.Connection) -> bool:
    """Whether the stocks the marts were built from are made up (the sample provider's)."""
    row = conn.execute("select coalesce(bool_or(is_synthetic), false) from raw.stocks").fetchone()
    return bool(row and row[0])


def dataset_fingerprint(query: str, window: DateWindow, last_loaded_at: datetime | None) -> str:
    payload = json.dumps(
        {
            "query": query,
            "window": [window.start.isoformat(), window.end.isoformat()],
            "last_loaded_at": last_loaded_at.isoformat() if last_loaded_at else None,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


class StaleDatasetError(LookupError):
    """The marts behind a dataset reference changed since it was taken."""


@dataclass(frozen=True)
class DatasetReference:
    """A dataset without its rows: enough to read it again, and to tell whether the data moved since."""

    window: DateWindow
    config: DatasetConfig
    fingerprint: str

    @classmethod
    def of(cls, dataset: Dataset) -> DatasetReference:
        return cls(window=dataset.window, config=dataset.config, fingerprint=dataset.fingerprint)

    def load(self, conn: psycopg.Connection) -> Dataset:
        return load_dataset(conn, self.window, self.config, expected_fingerprint=self.fingerprint)


def load_dataset(
    conn: psycopg.Connection,
    window: DateWindow | None = None,
    config: DatasetConfig | None = None,
    *,
    expected_fingerprint: str | None = None,
) -> Dataset:
    """The dataset of `window` (default: every date of the features mart), normalized and fingerprinted.

    With `expected_fingerprint`, the data must be what it was when that fingerprint was taken: a
    StaleDatasetError is raised otherwise, before any row is read. The config's feature set names the
    marts the features come from.
    """
    config = config or DatasetConfig()
    features_table = config.features_tables[0]
    if window is None:
        first, last = conn.execute(f"select min(date), max(date) from {features_table}").fetchone() or (
            None,
            None,
        )
        if first is None or last is None:
            raise LookupError(f"{features_table} is empty")
        window = DateWindow(first, last)
    by_table = {table: feature_columns(conn, table) for table in config.features_tables}
    features = [name for names in by_table.values() for name in names]
    if len(set(features)) < len(features):
        raise ValueError(f"the marts {', '.join(by_table)} share feature names")
    query = dataset_query(by_table, config.horizon)
    fingerprint = dataset_fingerprint(query, window, last_load_time(conn))
    if expected_fingerprint is not None and fingerprint != expected_fingerprint:
        raise StaleDatasetError(
            f"the marts changed since dataset {expected_fingerprint} of {window} was taken "
            f"(now {fingerprint})"
        )
    raw = _read_frame(conn, query, (window.start, window.end), features)
    if raw.empty:
        raise LookupError(f"no feature rows between {window.start} and {window.end}")
    return Dataset(
        frame=prepare_frame(raw, features, config),
        features=tuple(features),
        config=config,
        window=window,
        fingerprint=fingerprint,
        synthetic=market_is_synthetic(conn),
    )


def prepare_frame(raw: pd.DataFrame, features: Sequence[str], config: DatasetConfig) -> pd.DataFrame:
    """Sort by (date, symbol), normalize the features per date and add the label."""
    keys = pd.MultiIndex.from_frame(raw[["date", "symbol"]])
    frame = raw if keys.is_monotonic_increasing else raw.sort_values(["date", "symbol"], ignore_index=True)
    frame = frame.reset_index(drop=True)
    # The features as one block: a column per block, as Arrow hands them over, fragments a wide frame.
    normalized = pd.DataFrame(
        normalize_cross_section(frame, features, clip=config.clip), columns=list(features), index=frame.index
    )
    frame = pd.concat([frame.drop(columns=list(features)), normalized], axis=1)
    frame[LABEL] = training_label(frame, TARGET, config)
    return frame


def training_label(frame: pd.DataFrame, column: str, config: DatasetConfig) -> np.ndarray:
    """The label of `column` in a frame sorted by date, as the config's `label` says: z-scored per date, or
    per date the centred percentile rank (rank - 1/2) / count - 1/2, times sqrt(12) for unit variance."""
    if config.label == "rank":
        by_date = frame.groupby("date")[column]
        centred = (by_date.rank() - 0.5) / by_date.transform("count") - 0.5
        label: np.ndarray = (centred * np.sqrt(12)).to_numpy(np.float32)
        return label
    return normalize_cross_section(frame, [column], clip=config.clip)[:, 0]


def normalize_cross_section(
    frame: pd.DataFrame, columns: Sequence[str], *, clip: float, chunk: int = 4
) -> np.ndarray:
    """`columns` z-scored across the rows of each date (population standard deviation) and clipped to
    +-clip, as float32, for a frame sorted by date. Only the date's own rows enter its mean and deviation;
    missing values stay missing, and a column constant on a date scores 0 there. Sums run over the
    contiguous blocks of dates, `chunk` columns at a time to bound memory."""
    dates = frame["date"].to_numpy()
    if len(dates) and not (dates[1:] >= dates[:-1]).all():
        raise ValueError("the frame must be sorted by date")
    starts = np.flatnonzero(np.r_[True, dates[1:] != dates[:-1]]) if len(dates) else np.array([], int)
    sizes = np.diff(np.r_[starts, len(dates)])
    out = np.empty((len(frame), len(columns)), dtype=np.float32)
    for first in range(0, len(columns), chunk):
        names = list(columns[first : first + chunk])
        values = frame[names].to_numpy(np.float64)
        present = ~np.isnan(values)
        counts = np.add.reduceat(present, starts, axis=0) if len(starts) else np.zeros((0, len(names)))
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.add.reduceat(np.where(present, values, 0.0), starts, axis=0) / counts
            centred = np.where(present, values - np.repeat(mean, sizes, axis=0), 0.0)
            std = np.repeat(
                np.sqrt(np.add.reduceat(centred * centred, starts, axis=0) / counts), sizes, axis=0
            )
            scores = np.where(std > 0, centred / std, 0.0)
        scores[~present] = np.nan
        out[:, first : first + len(names)] = np.clip(scores, -clip, clip)
    return out


def _read_frame(
    conn: psycopg.Connection, query: str, params: tuple[date, date], features: Sequence[str]
) -> pd.DataFrame:
    """The query's rows through COPY into Arrow, streamed: far faster and leaner than fetching tuples."""
    types: dict[str, pa.DataType] = {
        "date": pa.date32(),
        "symbol": pa.string(),
        CLOSE: pa.float64(),
        TARGET: pa.float64(),
    }
    types |= {name: pa.float32() for name in features}
    with conn.cursor().copy(f"copy ({query}) to stdout with (format csv, header true)", params) as copy:
        reader = pacsv.open_csv(
            copy_file(copy),
            read_options=pacsv.ReadOptions(block_size=16 << 20),
            convert_options=pacsv.ConvertOptions(column_types=types),
        )
        table = reader.read_all()
    # Arrow's buffers are released column by column as pandas takes them over.
    frame: pd.DataFrame = table.to_pandas(self_destruct=True)
    del table
    frame["date"] = pd.to_datetime(frame["date"]).astype("datetime64[ns]")
    return frame
