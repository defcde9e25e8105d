"""Training frames: per-date normalization, the fingerprint, and that no feature row uses later data."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import psycopg
import pytest

from ml.config import DatasetConfig
from ml.datasets import (
    EXCLUDED_COLUMNS,
    FEATURES_TABLE,
    LABEL,
    TARGET,
    Dataset,
    DatasetReference,
    DateWindow,
    StaleDatasetError,
    dataset_fingerprint,
    dataset_query,
    feature_columns,
    load_dataset,
    normalize_cross_section,
    prepare_frame,
)
from stockyard import warehouse
from stockyard.marketdata.schema import History
from tests.ml.support import MARKET_END, MARKET_START, build_market, random_walk_provider, read_dataset


def test_normalization_uses_each_dates_own_cross_section() -> None:
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-01-02"] * 4 + ["2024-01-03"] * 3 + ["2024-01-04"] * 10),
            "x": [1.0, 2.0, 3.0, np.nan] + [5.0, 5.0, 5.0] + [0.0] * 9 + [100.0],
        }
    )
    scores = normalize_cross_section(frame, ["x"], clip=2.0)[:, 0]
    # Date 1: mean 2, population std sqrt(2/3); the missing value stays missing.
    z = 1 / np.sqrt(2 / 3)
    np.testing.assert_allclose(scores[:4], [-z, 0.0, z, np.nan], rtol=1e-6)
    # Date 2: constant, so 0.
    np.testing.assert_array_equal(scores[4:7], [0.0, 0.0, 0.0])
    # Date 3: mean 10, std 30: the outlier scores 3, clipped to 2; the others -1/3.
    np.testing.assert_allclose(scores[7:], [-1 / 3] * 9 + [2.0], rtol=1e-6)
    assert scores.dtype == np.float32


def test_prepare_frame_sorts_and_labels() -> None:
    raw = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-01-03", "2024-01-02", "2024-01-02", "2024-01-03"]),
            "symbol": ["B", "B", "A", "A"],
            "f": [4.0, 1.0, 3.0, 2.0],
            TARGET: [0.02, -0.01, 0.01, np.nan],
        }
    )
    frame = prepare_frame(raw, ["f"], DatasetConfig(label="zscore"))
    assert list(zip(frame["date"].dt.day, frame["symbol"], strict=True)) == [
        (2, "A"),
        (2, "B"),
        (3, "A"),
        (3, "B"),
    ]
    np.testing.assert_allclose(frame["f"], [1.0, -1.0, -1.0, 1.0])
    np.testing.assert_allclose(frame[LABEL], [1.0, -1.0, np.nan, 0.0])
    # The raw target is kept for the metrics.
    np.testing.assert_allclose(frame[TARGET], [0.01, -0.01, np.nan, 0.02])


def test_rank_label_is_the_centred_percentile_with_unit_variance() -> None:
    raw = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-01-02"] * 4 + ["2024-01-03"] * 2),
            "symbol": ["A", "B", "C", "D", "A", "B"],
            "f": [1.0] * 6,
            TARGET: [0.5, -0.01, 0.0, 0.01, np.nan, 0.03],
        }
    )
    label = prepare_frame(raw, ["f"], DatasetConfig(label="rank"))[LABEL].to_numpy()
    # Four ranks 1..4 centre on 1/8, 3/8, 5/8, 7/8; the outlier counts no more than the next best.
    np.testing.assert_allclose(label[:4], np.sqrt(12) * np.array([3, -3, -1, 1]) / 8, rtol=1e-6)
    np.testing.assert_allclose(label[4:], [np.nan, 0.0])
    many = prepare_frame(
        pd.DataFrame(
            {"date": pd.Timestamp("2024-01-02"), "symbol": range(1000), "f": 1.0, TARGET: np.arange(1000.0)}
        ),
        ["f"],
        DatasetConfig(),
    )[LABEL]
    assert abs(many.mean()) < 1e-6 and abs(many.std(ddof=0) - 1) < 1e-3


def test_fingerprint_changes_with_query_window_and_load_time() -> None:
    window = DateWindow(date(2020, 1, 1), date(2020, 12, 31))
    loaded = datetime(2024, 5, 1, tzinfo=UTC)

    def query_of(feature: str, horizon: int) -> str:
        return dataset_query({FEATURES_TABLE: [feature]}, horizon=horizon)

    query = query_of("return_5d", 5)
    base = dataset_fingerprint(query, window, loaded)
    assert dataset_fingerprint(query, window, loaded) == base
    assert dataset_fingerprint(query, DateWindow(date(2020, 1, 1), date(2020, 12, 30)), loaded) != base
    assert dataset_fingerprint(query, window, loaded + timedelta(seconds=1)) != base
    assert dataset_fingerprint(query_of("return_5d", 21), window, loaded) != base
    assert dataset_fingerprint(query_of("return_21d", 5), window, loaded) != base


def test_features_are_the_marts_numeric_columns_less_exclusions(random_walk_database: str) -> None:
    with psycopg.connect(random_walk_database) as conn:
        features = feature_columns(conn)
    assert not set(features) & EXCLUDED_COLUMNS
    assert {"return_21d", "volatility_63d", "rsi_14", "beta_63d"} <= set(features)
    # Price levels enter as ratios to the close.
    assert {"macd_to_close", "macd_signal_to_close", "atr_14_to_close"} <= set(features)


def test_the_all_feature_set_joins_alpha158_to_the_projects_features(
    random_walk_dataset: Dataset, random_walk_database: str
) -> None:
    with psycopg.connect(random_walk_database) as conn:
        alpha = load_dataset(conn, config=DatasetConfig(feature_set="alpha158"))
        both = load_dataset(conn, config=DatasetConfig(feature_set="all"))
    assert both.features == random_walk_dataset.features + alpha.features
    assert {"kmid", "roc5", "corr60", "vsumd60"} <= set(alpha.features)
    assert both.frame[["date", "symbol"]].equals(random_walk_dataset.frame[["date", "symbol"]])
    pd.testing.assert_frame_equal(
        both.frame[list(alpha.features)], alpha.frame[list(alpha.features)], check_exact=False
    )
    assert len({random_walk_dataset.fingerprint, alpha.fingerprint, both.fingerprint}) == 3


def test_dataset_from_the_marts(random_walk_dataset: Dataset, random_walk_database: str) -> None:
    frame = random_walk_dataset.frame
    with psycopg.connect(random_walk_database) as conn:
        listed = conn.execute("select count(distinct symbol) from raw.daily_prices").fetchone()
    assert listed == (frame["symbol"].nunique(),)
    assert frame.set_index(["date", "symbol"]).index.is_monotonic_increasing
    assert random_walk_dataset.window == DateWindow(MARKET_START, MARKET_END)
    # Features are z-scores per date (clipping the fat tails moves the mean a little); the last `horizon`
    # dates have no target yet.
    by_date = frame.groupby("date")[list(random_walk_dataset.features)]
    assert np.nanmax(np.abs(by_date.mean().to_numpy())) < 0.05
    assert np.nanmax(by_date.std(ddof=0).to_numpy()) < 1 + 1e-5
    unlabelled = random_walk_dataset.dates.difference(random_walk_dataset.labelled_dates)
    assert len(unlabelled) == random_walk_dataset.horizon
    assert random_walk_dataset.synthetic, "the sample market's stocks are made up"


def test_fingerprint_follows_the_window_and_new_loads(
    random_walk_dataset: Dataset, random_walk_database: str
) -> None:
    window = DateWindow(date(2020, 1, 2), date(2021, 6, 30))
    narrower = read_dataset(random_walk_database, window)
    assert narrower.frame["date"].min() >= pd.Timestamp(window.start)
    assert narrower.frame["date"].max() <= pd.Timestamp(window.end)
    assert read_dataset(random_walk_database, window).fingerprint == narrower.fingerprint
    assert narrower.fingerprint != random_walk_dataset.fingerprint
    reference = DatasetReference.of(narrower)
    with psycopg.connect(random_walk_database) as conn:
        assert reference.load(conn).frame.equals(narrower.frame)

    provider = random_walk_provider()
    with psycopg.connect(random_walk_database) as conn:
        warehouse.ingest(
            conn,
            provider,
            provider.symbols()[:3],
            start=date(2021, 12, 1),
            end=MARKET_END,
            partition_key="reload",
        )
    assert read_dataset(random_walk_database, window).fingerprint != narrower.fingerprint
    # What was trained on is gone: a reference to it refuses the new data.
    with psycopg.connect(random_walk_database) as conn, pytest.raises(StaleDatasetError, match="changed"):
        reference.load(conn)


def test_no_feature_row_uses_data_after_its_date(
    random_walk_dataset: Dataset, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Rewrite everything after a cutoff (prices, volumes, splits and dividends) and build the marts again:
    the features of every row up to the cutoff stay the same. New corporate actions after the cutoff
    rescale all earlier adjusted prices, which is why price levels only enter as ratios."""
    cutoff = pd.Timestamp("2021-06-30")
    provider = random_walk_provider()
    history = provider.history(provider.symbols(), MARKET_START, MARKET_END)
    rng = np.random.default_rng(1)
    bars = history.bars.copy()
    later = bars["date"] > cutoff
    bars.loc[later, ["open", "high", "low", "close"]] *= rng.uniform(0.5, 2.0, size=(later.sum(), 1))
    bars.loc[later, "volume"] = (bars.loc[later, "volume"] * rng.uniform(0.2, 5.0, size=later.sum())).round()
    actions = history.actions.loc[history.actions["ex_date"] <= cutoff]
    first_later = bars.loc[later, "date"].min()
    new_actions = pd.DataFrame(
        {
            "symbol": provider.symbols()[:10],
            "ex_date": first_later,
            "split_ratio": [2.0] * 5 + [1.0] * 5,
            "cash_dividend": [0.0] * 5 + [1.0] * 5,
            "provider": "sample",
        }
    )
    shifted_history = History(bars=bars, actions=pd.concat([actions, new_actions], ignore_index=True))

    scratch = tmp_path_factory.mktemp("dbt-shifted")
    for url in build_market(scratch, provider, shifted_history):
        shifted = read_dataset(url, random_walk_dataset.window)

    features = list(random_walk_dataset.features)
    before = random_walk_dataset.frame.loc[random_walk_dataset.frame["date"] <= cutoff]
    after = shifted.frame.loc[shifted.frame["date"] <= cutoff]
    assert (
        before[["date", "symbol"]]
        .reset_index(drop=True)
        .equals(after[["date", "symbol"]].reset_index(drop=True))
    )
    np.testing.assert_allclose(after[features].to_numpy(), before[features].to_numpy(), rtol=1e-4, atol=1e-4)
    # The doctored future did reach the data: features after the cutoff moved.
    moved = shifted.frame.loc[shifted.frame["date"] > cutoff, features].to_numpy()
    kept = random_walk_dataset.frame.loc[random_walk_dataset.frame["date"] > cutoff, features].to_numpy()
    assert np.nanmax(np.abs(moved - kept)) > 1.0
