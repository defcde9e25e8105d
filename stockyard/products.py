"""The products schema (stockyard.db.catalogue): the tables the product assets write and the API reads, and
their readers and writers.

Every writer checks its rows first and raises a ValueError naming what was wrong, then writes them with
COPY inside one transaction (a savepoint when the caller already has one open), so a failed write leaves
the table as it was. Writers never commit a caller's transaction: with a connection outside autocommit,
the caller commits.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import date

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from stockyard.analytics._inputs import check_dates, listing, require_columns, require_finite
from stockyard.analytics.backtest import BacktestResult
from stockyard.analytics.signal_health import realized_signal_health, rolling_rank_ic
from stockyard.db import catalogue
from stockyard.db.catalogue import BACKTEST_METRICS, written_columns

SYNTHETIC = "synthetic"
ACTIONS = ("buy", "hold", "sell")
ALIASES = ("champion", "challenger")
# The columns of a recommendations frame (ml.recommendations makes them): the table's, but data_source.
RECOMMENDATION_COLUMNS = written_columns(catalogue.recommendations, leaving=("data_source", "created_at"))
# The columns of a forecasts frame (ml.forecasts makes them): the table's, but data_source.
FORECAST_COLUMNS = written_columns(catalogue.forecasts, leaving=("data_source", "created_at"))
# The columns of a signal-health frame (signal_health_rows makes them): the table's, but those of the call.
SIGNAL_HEALTH_COLUMNS = written_columns(
    catalogue.signal_health, leaving=("model_name", "horizon_days", "data_source")
)
PRICES_TABLE = "marts.fct_daily_prices"


def data_source(conn: psycopg.Connection) -> str:
    """'synthetic' when the sample provider produced the warehouse's stocks, else the providers' names."""
    rows = conn.execute(
        "select distinct case when is_synthetic then %s else provider end from raw.stocks order by 1",
        (SYNTHETIC,),
    ).fetchall()
    return ",".join(row[0] for row in rows) or "unknown"


# --- readers ---------------------------------------------------------------------------------------------


def read_close_panel(conn: psycopg.Connection, start: date, end: date | None = None) -> pd.DataFrame:
    """The adjusted closes (total-return prices) of `start`..`end` (default: the latest date) as a panel: one
    row per date (a DatetimeIndex), one column per symbol, NaN where a symbol has no close: what the backtest
    and signal health take."""
    if end is not None and end < start:
        raise ValueError(f"price window end {end} is before its start {start}")
    rows = conn.execute(
        f"select date, symbol, adj_close from {PRICES_TABLE} "
        "where date between %s and coalesce(%s::date, 'infinity'::date)",
        (start, end),
    ).fetchall()
    if not rows:
        raise LookupError(f"{PRICES_TABLE} has no closes between {start} and {end or 'the latest date'}")
    long = pd.DataFrame(rows, columns=["date", "symbol", "adj_close"])
    panel = long.pivot(index="date", columns="symbol", values="adj_close").astype("float64").sort_index()
    panel.index = pd.DatetimeIndex(panel.index, name="date").astype("datetime64[ns]")
    panel.columns.name = None
    return panel


def read_recommendation_scores(
    conn: psycopg.Connection, model_name: str, start: date | None = None, end: date | None = None
) -> pd.DataFrame:
    """Columns date (Timestamp), symbol, score and model_version of the model's recommendations, by date and
    symbol: what signal_health_rows takes."""
    rows = conn.execute(
        """
        select date, symbol, score, model_version from products.recommendations
        where model_name = %s and date >= coalesce(%s, '-infinity'::date)
            and date <= coalesce(%s, 'infinity'::date)
        order by date, symbol
        """,
        (model_name, start, end),
    ).fetchall()
    frame = pd.DataFrame(rows, columns=["date", "symbol", "score", "model_version"])
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


# --- writers ---------------------------------------------------------------------------------------------


def write_recommendations(
    conn: psycopg.Connection,
    day: date,
    frame: pd.DataFrame,
    *,
    data_source: str,
    symbols: Collection[str] | None = None,
) -> int:
    """Replace the recommendations of `day` with `frame` (RECOMMENDATION_COLUMNS, one row per symbol);
    returns the rows written. `symbols`, when given, are the symbols listed that day: the frame must have
    exactly those."""
    what = f"recommendations of {day}"
    require_columns(frame, RECOMMENDATION_COLUMNS, what)
    frame = frame.reset_index(drop=True)
    _require_one_day(frame["date"], day, what)
    _require_unique_symbols(frame["symbol"], what)
    if symbols is not None:
        _require_symbols(frame["symbol"], symbols, what)
    for column in ("score", "percentile", "expected_excess_return", "confidence"):
        require_finite(frame[column], f"{what}: {column}")
    _require_ranks(frame, what)
    _require_between(frame["percentile"], 0.0, 1.0, f"{what}: percentile", open_low=True)
    _require_between(frame["confidence"], 0.0, 1.0, f"{what}: confidence")
    bad_actions = ~frame["action"].isin(ACTIONS)
    if bad_actions.any():
        found = listing(sorted(frame.loc[bad_actions, "action"].astype(str).unique()))
        raise ValueError(f"{what}: action must be one of {', '.join(ACTIONS)}; found {found}")
    model_name, model_version = _single_model(frame, what)
    data_dates = _dates(frame["data_date"], f"{what}: data_date")
    if (data_dates > pd.Timestamp(day)).any():
        raise ValueError(
            f"{what}: data_date is after the recommendation date on row(s) "
            f"{listing(frame.index[data_dates > pd.Timestamp(day)])}"
        )
    contributions = [
        _contributions_json(value, row, what) for row, value in enumerate(frame["top_contributions"])
    ]

    rows = zip(
        [day] * len(frame),
        frame["symbol"].astype(str).tolist(),
        frame["score"].astype("float64").tolist(),
        frame["rank"].astype("int64").tolist(),
        frame["percentile"].astype("float64").tolist(),
        frame["expected_excess_return"].astype("float64").tolist(),
        frame["confidence"].astype("float64").tolist(),
        frame["action"].astype(str).tolist(),
        contributions,
        [model_name] * len(frame),
        [model_version] * len(frame),
        data_dates.dt.date.tolist(),
        [data_source] * len(frame),
        strict=True,
    )
    with conn.transaction():
        conn.execute("delete from products.recommendations where date = %s", (day,))
        _copy(conn, "recommendations", [*RECOMMENDATION_COLUMNS, "data_source"], rows)
    return len(frame)


def write_forecasts(conn: psycopg.Connection, frame: pd.DataFrame, *, data_source: str) -> int:
    """Replace the forecasts of each (data_date, symbol) in `frame` (FORECAST_COLUMNS, steps 1..h per
    symbol); returns the rows written."""
    what = "forecasts"
    require_columns(frame, FORECAST_COLUMNS, what)
    frame = frame.reset_index(drop=True)
    data_dates = _dates(frame["data_date"], f"{what}: data_date")
    target_dates = _dates(frame["target_date"], f"{what}: target_date")
    keys = pd.DataFrame({"data_date": data_dates, "symbol": frame["symbol"], "target_date": target_dates})
    duplicated = keys.duplicated()
    if duplicated.any():
        raise ValueError(
            f"{what}: more than one row per data date, symbol and target date on row(s) "
            f"{listing(frame.index[duplicated])}"
        )
    late = target_dates <= data_dates
    if late.any():
        raise ValueError(f"{what}: target_date is not after data_date on row(s) {listing(frame.index[late])}")
    for column in ("predicted_close", "lower_close", "upper_close", "interval_width"):
        require_finite(frame[column], f"{what}: {column}")
    _require_between(frame["interval_width"], 0.0, 1.0, f"{what}: interval_width", open_low=True)
    lower, predicted, upper = (
        frame[c].astype("float64") for c in ("lower_close", "predicted_close", "upper_close")
    )
    outside = ~((lower <= predicted) & (predicted <= upper)) | (lower <= 0)
    if outside.any():
        raise ValueError(
            f"{what}: closes must be positive with lower <= predicted <= upper; not on row(s) "
            f"{listing(frame.index[outside])}"
        )
    steps = pd.to_numeric(frame["step"], errors="coerce")
    expected_steps = keys.sort_values("target_date").groupby(["data_date", "symbol"]).cumcount() + 1
    gaps = steps != expected_steps.reindex(frame.index)
    if gaps.any():
        raise ValueError(
            f"{what}: steps must run 1..h in target-date order per data date and symbol; not on "
            f"row(s) {listing(frame.index[gaps])}"
        )
    _single_model(frame, what)

    pairs = keys[["data_date", "symbol"]].drop_duplicates()
    rows = zip(
        data_dates.dt.date.tolist(),
        frame["symbol"].astype(str).tolist(),
        target_dates.dt.date.tolist(),
        steps.astype("int64").tolist(),
        predicted.tolist(),
        lower.tolist(),
        upper.tolist(),
        frame["interval_width"].astype("float64").tolist(),
        frame["model_name"].astype(str).tolist(),
        frame["model_version"].astype(str).tolist(),
        [data_source] * len(frame),
        strict=True,
    )
    with conn.transaction():
        conn.execute(
            """
            delete from products.forecasts as forecast
            using unnest(%s::date[], %s::text[]) as replaced(data_date, symbol)
            where forecast.data_date = replaced.data_date and forecast.symbol = replaced.symbol
            """,
            (pairs["data_date"].dt.date.tolist(), pairs["symbol"].astype(str).tolist()),
        )
        _copy(conn, "forecasts", [*FORECAST_COLUMNS, "data_source"], rows)
    return len(frame)


def write_backtest(
    conn: psycopg.Connection,
    result: BacktestResult,
    *,
    model_name: str,
    model_version: str,
    run_id: str,
    data_date: date,
    data_source: str,
) -> int:
    """Keep a backtest with its daily equity and positions; returns its backtest_id. Backtests are history:
    each call adds one."""
    metrics = result.metrics.as_dict()
    bad = [name for name in BACKTEST_METRICS if not math.isfinite(metrics[name])]
    if bad:
        shown = ", ".join(f"{name}={metrics[name]}" for name in bad)
        raise ValueError(f"backtest of {model_name} v{model_version}: metrics must be finite; {shown}")
    curve = result.equity_curve
    if curve.empty or result.positions.empty:
        raise ValueError(f"backtest of {model_name} v{model_version} has no equity curve or no positions")
    with conn.transaction():
        row = conn.execute(
            sql.SQL(
                """
                insert into products.backtests (
                    model_name, model_version, run_id, start_date, end_date, top_k, rebalance_days,
                    cost_bps, {metrics}, data_date, data_source
                ) values (%s, %s, %s, %s, %s, %s, %s, %s, {placeholders}, %s, %s)
                returning backtest_id
                """
            ).format(
                metrics=sql.SQL(", ").join(map(sql.Identifier, BACKTEST_METRICS)),
                placeholders=sql.SQL(", ").join([sql.Placeholder()] * len(BACKTEST_METRICS)),
            ),
            (
                model_name,
                model_version,
                run_id,
                curve.index[0].date(),
                curve.index[-1].date(),
                result.k,
                result.rebalance_every,
                result.cost_bps,
                *(float(metrics[name]) for name in BACKTEST_METRICS),
                data_date,
                data_source,
            ),
        ).fetchone()
        assert row is not None  # insert ... returning gives the new row
        backtest_id = int(row[0])
        _copy(
            conn,
            "backtest_equity",
            written_columns(catalogue.backtest_equity),
            zip(
                [backtest_id] * len(curve),
                pd.DatetimeIndex(curve.index).date.tolist(),
                curve["strategy"].astype("float64").tolist(),
                curve["benchmark"].astype("float64").tolist(),
                strict=True,
            ),
        )
        positions = result.positions
        _copy(
            conn,
            "backtest_positions",
            written_columns(catalogue.backtest_positions),
            zip(
                [backtest_id] * len(positions),
                pd.DatetimeIndex(positions["rebalance_date"]).date.tolist(),
                positions["symbol"].astype(str).tolist(),
                positions["weight"].astype("float64").tolist(),
                strict=True,
            ),
        )
    return backtest_id


def signal_health_rows(
    recommendations: pd.DataFrame,
    prices: pd.DataFrame,
    *,
    horizon: int,
    window: int,
    as_of: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """SIGNAL_HEALTH_COLUMNS for every recommendation date whose horizon has passed by `as_of`: the realized
    rank IC and top-decile return (stockyard.analytics.signal_health) and the rolling IC over `window`
    dates, with the model version of each date. `recommendations`: date, symbol, score, model_version (all
    the history, so the rolling IC has its window)."""
    require_columns(recommendations, ["date", "symbol", "score", "model_version"], "recommendations")
    dates = check_dates(recommendations["date"], "recommendations' date")
    versions = recommendations.assign(date=dates).groupby("date")["model_version"]
    mixed = versions.nunique() > 1
    if mixed.any():
        raise ValueError(
            f"recommendations of one date come from several model versions on {listing(mixed.index[mixed])}"
        )
    health = realized_signal_health(
        recommendations[["date", "symbol", "score"]], prices, horizon=horizon, as_of=as_of
    )
    health["rolling_rank_ic"] = rolling_rank_ic(health, window=window).reindex(health.index)
    health["model_version"] = versions.first().reindex(health.index).astype(str)
    return health.rename_axis("date").reset_index().loc[:, list(SIGNAL_HEALTH_COLUMNS)]


def write_signal_health(
    conn: psycopg.Connection, health: pd.DataFrame, *, model_name: str, horizon_days: int, data_source: str
) -> int:
    """Replace the model's signal health on the dates of `health` (SIGNAL_HEALTH_COLUMNS); returns the rows
    written."""
    what = f"signal health of {model_name}"
    require_columns(health, SIGNAL_HEALTH_COLUMNS, what)
    health = health.reset_index(drop=True)
    dates = _dates(health["date"], f"{what}: date")
    if dates.duplicated().any():
        raise ValueError(f"{what}: more than one row for {listing(sorted(dates[dates.duplicated()]))}")
    if horizon_days < 1:
        raise ValueError(f"{what}: horizon_days must be at least 1, got {horizon_days}")
    symbols = pd.to_numeric(health["symbols"], errors="coerce")
    if not (symbols.notna() & (symbols >= 0) & (symbols == symbols.round())).all():
        raise ValueError(f"{what}: symbols must be counts >= 0")
    values = {
        column: [
            None if math.isnan(v) else v for v in pd.to_numeric(health[column]).astype("float64").tolist()
        ]
        for column in ("realized_rank_ic", "top_decile_return", "rolling_rank_ic")
    }
    infinite = [c for c, v in values.items() if any(x is not None and math.isinf(x) for x in v)]
    if infinite:
        raise ValueError(f"{what}: {', '.join(infinite)} must be finite or missing")
    rows = zip(
        dates.dt.date.tolist(),
        [model_name] * len(health),
        health["model_version"].astype(str).tolist(),
        [horizon_days] * len(health),
        values["realized_rank_ic"],
        values["top_decile_return"],
        values["rolling_rank_ic"],
        symbols.astype("int64").tolist(),
        [data_source] * len(health),
        strict=True,
    )
    with conn.transaction():
        conn.execute(
            "delete from products.signal_health where model_name = %s and date = any(%s::date[])",
            (model_name, dates.dt.date.tolist()),
        )
        _copy(conn, "signal_health", written_columns(catalogue.signal_health), rows)
    return len(health)


def record_model_version(
    conn: psycopg.Connection,
    *,
    model_name: str,
    family: str,
    version: str,
    aliases: Iterable[str],
    run_id: str,
    run_url: str,
    evaluation_start: date,
    evaluation_end: date,
    metrics: Mapping[str, float],
    promotion_reason: str,
    dataset_fingerprint: str,
    data_source: str,
) -> None:
    """Insert or update a registered version. `aliases` are its registry aliases; the row keeps 'champion'
    when it has that one, else 'challenger' if it has it, and the aliases it has are taken from the model's
    other versions, as the registry moves them."""
    held = set(aliases)
    unknown = held - set(ALIASES)
    if unknown:
        raise ValueError(
            f"unknown alias(es) {listing(sorted(unknown))} for {model_name} v{version}: "
            f"expected {', '.join(ALIASES)}"
        )
    if evaluation_end < evaluation_start:
        raise ValueError(
            f"{model_name} v{version}: evaluation end {evaluation_end} is before its start {evaluation_start}"
        )
    alias = next((name for name in ALIASES if name in held), None)
    # JSON has no NaN: a metric that could not be computed is null.
    document = json.dumps(
        {name: float(value) if math.isfinite(value) else None for name, value in metrics.items()}
    )
    with conn.transaction():
        conn.execute(
            """
            update products.model_versions set alias = null
            where model_name = %s and version <> %s and alias = any(%s::text[])
            """,
            (model_name, version, sorted(held)),
        )
        conn.execute(
            """
            insert into products.model_versions (
                model_name, family, version, alias, run_id, run_url, evaluation_start, evaluation_end,
                metrics, promotion_reason, dataset_fingerprint, data_source
            ) values (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s)
            on conflict (model_name, version) do update set
                family = excluded.family,
                alias = excluded.alias,
                run_id = excluded.run_id,
                run_url = excluded.run_url,
                evaluation_start = excluded.evaluation_start,
                evaluation_end = excluded.evaluation_end,
                metrics = excluded.metrics,
                promotion_reason = excluded.promotion_reason,
                dataset_fingerprint = excluded.dataset_fingerprint,
                data_source = excluded.data_source
            """,
            (
                model_name,
                family,
                version,
                alias,
                run_id,
                run_url,
                evaluation_start,
                evaluation_end,
                document,
                promotion_reason,
                dataset_fingerprint,
                data_source,
            ),
        )


# --- checks and COPY -------------------------------------------------------------------------------------


def _copy(
    conn: psycopg.Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[object]]
) -> None:
    statement = sql.SQL("copy {} ({}) from stdin").format(
        sql.Identifier("products", table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor().copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _dates(values: pd.Series, what: str) -> pd.Series:
    dates: pd.Series = check_dates(values, what).dt.normalize()
    return dates


def _require_one_day(values: pd.Series, day: date, what: str) -> None:
    dates = _dates(values, f"{what}: date")
    other = dates != pd.Timestamp(day)
    if other.any():
        raise ValueError(f"{what}: rows of other dates ({listing(sorted(dates[other].unique()))})")


def _require_unique_symbols(symbols: pd.Series, what: str) -> None:
    blank = symbols.isna() | (symbols.astype(str).str.strip() == "")
    if blank.any():
        raise ValueError(f"{what}: missing symbol on row(s) {listing(symbols.index[blank])}")
    repeated = symbols.duplicated()
    if repeated.any():
        raise ValueError(
            f"{what}: more than one row for symbol(s) {listing(sorted(symbols[repeated].unique()))}"
        )


def _require_symbols(symbols: pd.Series, expected: Collection[str], what: str) -> None:
    present, listed = set(symbols.astype(str)), set(expected)
    missing, extra = sorted(listed - present), sorted(present - listed)
    if missing or extra:
        raise ValueError(
            f"{what} must have one row per listed symbol: {len(missing)} missing ({listing(missing)}), "
            f"{len(extra)} not listed ({listing(extra)})"
        )


def _require_ranks(frame: pd.DataFrame, what: str) -> None:
    ranks = pd.to_numeric(frame["rank"], errors="coerce")
    expected = np.arange(1, len(frame) + 1)
    if ranks.isna().any() or not np.array_equal(np.sort(ranks.to_numpy()), expected):
        found = pd.Index(ranks.dropna())
        missing = sorted(set(expected) - set(found))
        repeated = sorted(found[found.duplicated()].unique())
        raise ValueError(
            f"{what}: ranks must run 1..{len(frame)} without holes or repeats; "
            f"missing {listing(missing) or '-'}, repeated {listing(repeated) or '-'}, "
            f"not a number on {ranks.isna().sum()} row(s)"
        )
    scores = frame["score"].astype("float64").to_numpy()[np.argsort(ranks.to_numpy())]
    out_of_order = np.flatnonzero(np.diff(scores) > 0)
    if out_of_order.size:
        raise ValueError(
            f"{what}: a better rank must not have a lower score; rank {out_of_order[0] + 2} "
            f"scores above rank {out_of_order[0] + 1}"
        )


def _require_between(
    values: pd.Series, low: float, high: float, what: str, *, open_low: bool = False
) -> None:
    numbers = values.astype("float64")
    above_low = numbers > low if open_low else numbers >= low
    bad = ~(above_low & (numbers <= high))
    if bad.any():
        interval = f"{'(' if open_low else '['}{low:g}, {high:g}]"
        raise ValueError(f"{what} must be in {interval}; not on row(s) {listing(values.index[bad])}")


def _single_model(frame: pd.DataFrame, what: str) -> tuple[str, str]:
    models = frame[["model_name", "model_version"]].astype(str).drop_duplicates()
    if len(models) != 1:
        shown = listing(f"{name} v{version}" for name, version in models.itertuples(index=False))
        raise ValueError(f"{what} must come from one model version, not {len(models)}: {shown}")
    name, version = models.iloc[0]
    if not name.strip() or not version.strip() or name == "nan" or version == "nan":
        raise ValueError(f"{what}: model_name and model_version must be given")
    return str(name), str(version)


def _contributions_json(value: object, row: int, what: str) -> str:
    if not isinstance(value, list) or not all(
        isinstance(item, dict) and isinstance(item.get("feature"), str) and "contribution" in item
        for item in value
    ):
        raise ValueError(
            f"{what}: top_contributions on row {row} must be a list of "
            '{"feature", "value", "contribution"} objects'
        )
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{what}: top_contributions on row {row} are not plain JSON ({error})") from error
