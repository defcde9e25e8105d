"""The products writers and readers against a throwaway database: rows round-trip, re-runs replace, and bad
input is refused with the table left as it was."""

from __future__ import annotations

import dataclasses
import math
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pytest

from ml.datasets import Dataset
from ml.recommendations import Champion, recommend
from stockyard.analytics.backtest import BacktestResult, run_backtest
from stockyard.products import (
    RECOMMENDATION_COLUMNS,
    SIGNAL_HEALTH_COLUMNS,
    read_close_panel,
    read_recommendation_scores,
    record_model_version,
    signal_health_rows,
    write_backtest,
    write_recommendations,
    write_signal_health,
)

PANEL_SYMBOLS = ["AAA", "BBB", "CCC", "DDD"]


def recommendations_of(champion: Champion, market: Dataset, position: int, version: str) -> pd.DataFrame:
    return recommend(
        champion.model,
        market.rows(market.dates[[position]]),
        champion.calibration,
        model_name=champion.model_name,
        model_version=version,
    )


def stored_recommendations(conn: psycopg.Connection) -> pd.DataFrame:
    columns = [*RECOMMENDATION_COLUMNS, "data_source"]
    rows = conn.execute(
        f"select {', '.join(columns)} from products.recommendations order by date, rank"
    ).fetchall()
    return pd.DataFrame(rows, columns=columns)


@pytest.fixture(scope="module")
def day_recommendations(champion: Champion, market: Dataset) -> pd.DataFrame:
    return recommendations_of(champion, market, -1, "1")


def test_recommendations_round_trip(conn: psycopg.Connection, day_recommendations: pd.DataFrame) -> None:
    day = day_recommendations["date"].iloc[0]
    symbols = set(day_recommendations["symbol"])
    assert (
        write_recommendations(conn, day, day_recommendations, data_source="synthetic", symbols=symbols) == 30
    )
    conn.commit()
    stored = stored_recommendations(conn)
    pd.testing.assert_frame_equal(stored.drop(columns="data_source"), day_recommendations, check_dtype=False)
    assert set(stored["data_source"]) == {"synthetic"}
    # jsonb keeps the explanation as written: largest |contribution| first.
    first = stored["top_contributions"].iloc[0]
    assert [abs(item["contribution"]) for item in first] == sorted(
        (abs(item["contribution"]) for item in first), reverse=True
    )


def test_rerunning_a_date_replaces_it_and_keeps_history(
    conn: psycopg.Connection, champion: Champion, market: Dataset, day_recommendations: pd.DataFrame
) -> None:
    day = day_recommendations["date"].iloc[0]
    earlier = recommendations_of(champion, market, -2, "1")
    write_recommendations(conn, earlier["date"].iloc[0], earlier, data_source="synthetic")
    write_recommendations(conn, day, day_recommendations, data_source="synthetic")
    conn.commit()
    rerun = recommendations_of(champion, market, -1, "2").iloc[:29]
    rerun["rank"] = range(1, 30)
    write_recommendations(conn, day, rerun, data_source="synthetic")
    conn.commit()
    stored = stored_recommendations(conn)
    assert stored.groupby("date")["model_version"].unique().map(list).to_dict() == {
        earlier["date"].iloc[0]: ["1"],
        day: ["2"],
    }
    assert stored.groupby("date").size().tolist() == [30, 29]
    scores = read_recommendation_scores(conn, champion.model_name, start=day)
    assert list(scores.columns) == ["date", "symbol", "score", "model_version"]
    assert len(scores) == 29 and (scores["date"] == pd.Timestamp(day)).all()


def swap_ranks(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(rank=frame["rank"].replace({1: 2, 2: 1}))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda f: f.assign(symbol=f["symbol"].where(f.index != 1, f["symbol"].iloc[0])),
            "more than one row",
        ),
        (lambda f: f.assign(rank=f["rank"].where(f.index != 5, 40)), r"ranks must run 1..30.*missing 6"),
        (lambda f: f.assign(rank=f["rank"].where(f.index != 5, 5)), r"repeated 5"),
        (swap_ranks, "a better rank must not have a lower score"),
        (lambda f: f.assign(score=f["score"].where(f.index != 3, np.inf)), "score must be finite"),
        (lambda f: f.assign(action=f["action"].where(f.index != 2, "strong buy")), "action must be one of"),
        (lambda f: f.assign(date=date(2020, 1, 2)), "rows of other dates"),
        (lambda f: f.assign(percentile=f["percentile"] * 2), r"percentile must be in \(0, 1\]"),
        (lambda f: f.assign(model_version=f["rank"].astype(str)), "from one model version"),
        (lambda f: f.iloc[:-1], "one row per listed symbol: 1 missing"),
        (lambda f: f.assign(top_contributions="feature_0"), "top_contributions on row 0 must be a list"),
        (lambda f: f.drop(columns="confidence"), "missing column"),
    ],
)
def test_bad_recommendations_are_refused_and_the_date_kept(
    conn: psycopg.Connection, day_recommendations: pd.DataFrame, change, message
) -> None:
    day = day_recommendations["date"].iloc[0]
    write_recommendations(conn, day, day_recommendations, data_source="synthetic")
    conn.commit()
    bad = change(day_recommendations.copy())
    with pytest.raises(ValueError, match=message):
        write_recommendations(
            conn, day, bad, data_source="synthetic", symbols=set(day_recommendations["symbol"])
        )
    assert len(stored_recommendations(conn)) == 30


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2024-01-01", periods=15)
    growth = np.exp(np.cumsum(rng.normal(0, 0.01, size=(len(dates), len(PANEL_SYMBOLS))), axis=0))
    return pd.DataFrame(100 * growth, index=dates, columns=PANEL_SYMBOLS)


@pytest.fixture(scope="module")
def scores(prices: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(4)
    dates = prices.index[:12]
    return pd.DataFrame(
        {
            "date": np.repeat(dates, len(PANEL_SYMBOLS)),
            "symbol": PANEL_SYMBOLS * len(dates),
            "score": rng.normal(size=len(dates) * len(PANEL_SYMBOLS)),
            "model_version": np.repeat(["1"] * 6 + ["2"] * 6, len(PANEL_SYMBOLS)),
        }
    )


@pytest.fixture(scope="module")
def backtest(scores: pd.DataFrame, prices: pd.DataFrame) -> BacktestResult:
    return run_backtest(scores, prices, k=2, rebalance_every=3, cost_bps=10)


def test_backtest_round_trip(conn: psycopg.Connection, backtest: BacktestResult) -> None:
    options = {
        "model_name": "stockyard-xgboost",
        "model_version": "3",
        "run_id": "run-3",
        "data_source": "synthetic",
    }
    first = write_backtest(conn, backtest, data_date=date(2024, 1, 19), **options)
    second = write_backtest(conn, backtest, data_date=date(2024, 1, 19), **options)
    conn.commit()
    assert second > first  # backtests are history
    row = conn.execute(
        "select start_date, end_date, top_k, rebalance_days, cost_bps, sharpe, turnover, excess_annual_return"
        " from products.backtests where backtest_id = %s",
        (first,),
    ).fetchone()
    metrics = backtest.metrics
    # Rebalanced on the 1st, 4th, 9th and 12th (the last score date is the 16th), held to the 17th.
    assert row == (
        date(2024, 1, 1),
        date(2024, 1, 17),
        2,
        3,
        10.0,
        pytest.approx(metrics.sharpe),
        pytest.approx(metrics.turnover),
        pytest.approx(metrics.excess_annual_return),
    )
    equity = conn.execute(
        "select date, strategy_value, benchmark_value from products.backtest_equity"
        " where backtest_id = %s order by date",
        (first,),
    ).fetchall()
    assert [day for day, _, _ in equity] == pd.DatetimeIndex(backtest.equity_curve.index).date.tolist()
    np.testing.assert_allclose([value for _, value, _ in equity], backtest.equity_curve["strategy"])
    positions = conn.execute(
        "select rebalance_date, symbol, weight from products.backtest_positions"
        " where backtest_id = %s order by rebalance_date, symbol",
        (first,),
    ).fetchall()
    expected = backtest.positions.sort_values(["rebalance_date", "symbol"])
    assert [(day, symbol) for day, symbol, _ in positions] == list(
        zip(expected["rebalance_date"].dt.date, expected["symbol"], strict=True)
    )
    assert {weight for _, _, weight in positions} == {0.5}


def test_backtest_with_undefined_metrics_is_refused(
    conn: psycopg.Connection, backtest: BacktestResult
) -> None:
    broken = dataclasses.replace(backtest, metrics=dataclasses.replace(backtest.metrics, sharpe=math.nan))
    with pytest.raises(ValueError, match="metrics must be finite; sharpe=nan"):
        write_backtest(
            conn,
            broken,
            model_name="stockyard-xgboost",
            model_version="3",
            run_id="run-3",
            data_date=date(2024, 1, 19),
            data_source="synthetic",
        )
    assert conn.execute("select count(*) from products.backtests").fetchone() == (0,)


def test_signal_health_rows_and_round_trip(
    conn: psycopg.Connection, scores: pd.DataFrame, prices: pd.DataFrame
) -> None:
    health = signal_health_rows(scores, prices, horizon=5, window=3)
    assert list(health.columns) == list(SIGNAL_HEALTH_COLUMNS)
    # Horizons passed by the panel's last date: the first 10 of the 12 score dates.
    assert health["date"].tolist() == prices.index[:10].tolist()
    assert health["model_version"].tolist() == ["1"] * 6 + ["2"] * 4
    assert health["rolling_rank_ic"].iloc[:2].isna().all()
    assert health["rolling_rank_ic"].iloc[2] == pytest.approx(health["realized_rank_ic"].iloc[:3].mean())

    assert (
        write_signal_health(
            conn, health, model_name="stockyard-xgboost", horizon_days=5, data_source="synthetic"
        )
        == 10
    )
    # A later run replaces the dates it has and keeps the others.
    write_signal_health(
        conn,
        health.iloc[8:].assign(symbols=1),
        model_name="stockyard-xgboost",
        horizon_days=5,
        data_source="synthetic",
    )
    conn.commit()
    stored = conn.execute(
        "select date, model_version, realized_rank_ic, rolling_rank_ic, symbols from products.signal_health"
        " order by date"
    ).fetchall()
    assert [row[4] for row in stored] == [4] * 8 + [1, 1]
    assert stored[0][3] is None  # no rolling IC yet: null, not NaN
    assert stored[0][2] == pytest.approx(health["realized_rank_ic"].iloc[0])


def test_signal_health_refuses_mixed_versions_on_a_date(scores: pd.DataFrame, prices: pd.DataFrame) -> None:
    mixed = scores.assign(model_version=scores["model_version"].where(scores.index != 0, "9"))
    with pytest.raises(ValueError, match="several model versions on 2024-01-01"):
        signal_health_rows(mixed, prices, horizon=5, window=3)


def model_version(conn: psycopg.Connection, version: str, aliases: list[str], **changes) -> None:
    values: dict[str, Any] = {
        "model_name": "stockyard-xgboost",
        "family": "xgboost",
        "version": version,
        "aliases": aliases,
        "run_id": f"run-{version}",
        "run_url": f"http://127.0.0.1:5000/#/experiments/1/runs/run-{version}",
        "evaluation_start": date(2023, 1, 3),
        "evaluation_end": date(2024, 6, 28),
        "metrics": {"rank_ic": 0.03, "icir": math.nan},
        "promotion_reason": "no champion yet",
        "dataset_fingerprint": "abc",
        "data_source": "synthetic",
    }
    record_model_version(conn, **(values | changes))


def aliases(conn: psycopg.Connection) -> dict[str, str | None]:
    rows = conn.execute("select version, alias from products.model_versions order by version").fetchall()
    return dict(rows)


def test_model_versions_move_aliases(conn: psycopg.Connection) -> None:
    model_version(conn, "1", ["challenger", "champion"])
    assert aliases(conn) == {"1": "champion"}
    model_version(conn, "2", ["challenger"])
    assert aliases(conn) == {"1": "champion", "2": "challenger"}
    model_version(conn, "3", ["challenger", "champion"])
    assert aliases(conn) == {"1": None, "2": None, "3": "champion"}
    # Recording a version again updates it in place.
    model_version(conn, "2", [], promotion_reason="re-recorded")
    conn.commit()
    assert aliases(conn) == {"1": None, "2": None, "3": "champion"}
    row = conn.execute(
        "select metrics, promotion_reason from products.model_versions where version = '2'"
    ).fetchone()
    assert row == ({"rank_ic": 0.03, "icir": None}, "re-recorded")


def test_bad_model_versions_are_named(conn: psycopg.Connection) -> None:
    with pytest.raises(ValueError, match="unknown alias"):
        model_version(conn, "1", ["production"])
    with pytest.raises(ValueError, match="evaluation end 2022-01-03 is before its start"):
        model_version(conn, "1", [], evaluation_end=date(2022, 1, 3))


def test_close_panel(conn: psycopg.Connection) -> None:
    with conn.cursor() as cursor:
        cursor.executemany(
            "insert into marts.fct_daily_prices values (%s, %s, %s)",
            [
                ("AAA", date(2024, 1, 2), 10.0),
                ("BBB", date(2024, 1, 2), 20.0),
                ("AAA", date(2024, 1, 3), 11.0),
                ("AAA", date(2024, 1, 4), 12.0),
            ],
        )
    panel = read_close_panel(conn, date(2024, 1, 2), date(2024, 1, 3))
    expected = pd.DataFrame(
        {"AAA": [10.0, 11.0], "BBB": [20.0, np.nan]},
        index=pd.DatetimeIndex(["2024-01-02", "2024-01-03"], name="date").astype("datetime64[ns]"),
    )
    pd.testing.assert_frame_equal(panel, expected)
    # Without an end, to the latest date.
    assert read_close_panel(conn, date(2024, 1, 3)).index.tolist() == [
        pd.Timestamp("2024-01-03"),
        pd.Timestamp("2024-01-04"),
    ]
    with pytest.raises(LookupError, match="no closes between 2025-01-02 and 2025-01-03"):
        read_close_panel(conn, date(2025, 1, 2), date(2025, 1, 3))
    with pytest.raises(LookupError, match="no closes between 2025-01-02 and the latest date"):
        read_close_panel(conn, date(2025, 1, 2))


def test_signal_health_from_stored_recommendations_and_closes(
    conn: psycopg.Connection, champion: Champion, market: Dataset
) -> None:
    """The asset's path: recommendations and closes read back from the database feed the signal health."""
    for position in (-30, -29, -28):
        recs = recommendations_of(champion, market, position, "1")
        write_recommendations(conn, recs["date"].iloc[0], recs, data_source="synthetic")
    closes = market.rows(market.dates[-30:])[["symbol", "date", "close"]]
    with conn.cursor() as cursor:
        cursor.executemany(
            "insert into marts.fct_daily_prices values (%s, %s, %s)",
            [(symbol, day.date(), close) for symbol, day, close in closes.itertuples(index=False)],
        )
    start, end = market.dates[-30].date(), market.dates[-1].date()
    health = signal_health_rows(
        read_recommendation_scores(conn, champion.model_name),
        read_close_panel(conn, start, end),
        horizon=5,
        window=2,
    )
    assert health["date"].tolist() == market.dates[-30:-27].tolist()
    assert health["symbols"].tolist() == [30, 30, 30]
    assert health["realized_rank_ic"].notna().all() and health["rolling_rank_ic"].notna().tolist() == [
        False,
        True,
        True,
    ]
    assert (
        write_signal_health(
            conn, health, model_name=champion.model_name, horizon_days=5, data_source="synthetic"
        )
        == 3
    )
