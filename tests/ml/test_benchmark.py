"""The models benchmark: its backtest and metric maths on hand-computed cases, its protocol on a random
walk, and `stockyard bench models` end to end on a tiny market of CSV files."""

from __future__ import annotations

import math
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.bench import parse_years
from cli.main import app
from ml.benchmark import BenchmarkConfig, fit_and_predict, folds_for, score_predictions
from ml.config import XGBoostConfig
from ml.datasets import Dataset
from ml.metrics import daily_ic, mean_standard_error
from ml.models.ensemble import rank_ensemble
from ml.qlib_side import read_qlib_field, write_qlib_data
from ml.splits import yearly_splits
from ml.topk_dropout import TopkDropoutConfig, backtest_metrics, risk_analysis, topk_dropout_daily
from stockyard.endpoints import sibling_database_url
from tests.ml.support import write_csv_market
from tests.support import throwaway_database

DAYS = pd.to_datetime(["2021-01-04", "2021-01-05", "2021-01-06"])


def _frame(rows: list[tuple[pd.Timestamp, str, float]], column: str) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["date", "symbol", column])


def test_topk_dropout_trades_and_costs_as_worked_out_by_hand() -> None:
    d1, d2, d3 = DAYS
    scores = _frame(
        [(d1, "A", 4), (d1, "B", 3), (d1, "C", 2), (d1, "D", 1)]
        + [(d2, "A", 1), (d2, "B", 4), (d2, "C", 3), (d2, "D", 2)]
        # B has no score on the third day: it is sold whatever its rank.
        + [(d3, "A", 3), (d3, "C", 1), (d3, "D", 2)],
        "prediction",
    )
    returns = _frame(
        [(d1, "A", 0.01), (d1, "B", 0.02), (d1, "C", 0.03), (d1, "D", 0.04)]
        + [(d2, "A", -0.01), (d2, "B", 0.0), (d2, "C", 0.02)]
        + [(d3, "A", 0.05), (d3, "C", 0.0), (d3, "D", -0.01)],
        "next_return",
    )
    daily = topk_dropout_daily(scores, returns, TopkDropoutConfig(k=2, n_drop=1))

    # Day 1 buys A, B; day 2 sells A (lowest of held + best candidate C), buys C; day 3 sells C (lowest of
    # C and the candidates A, D) and the unscored B, buys A and D.
    assert daily["bought"].tolist() == [2, 1, 2]
    assert daily["sold"].tolist() == [0, 1, 2]
    assert daily["gross"].tolist() == pytest.approx([0.015, 0.01, 0.02])
    # A scored name without a next return earns 0 (D on day 2).
    assert daily["benchmark"].tolist() == pytest.approx([0.025, 0.0025, 0.04 / 3])
    # Each name is 1/k of the book: buys at 5 bp, sells at 15 bp.
    assert daily["cost"].tolist() == pytest.approx([2 * 5 / 2e4, (5 + 15) / 2e4, (2 * 5 + 2 * 15) / 2e4])


def test_risk_analysis_follows_qlib_conventions() -> None:
    returns = pd.Series([0.01, -0.02, 0.03])
    mean = 0.02 / 3
    std = math.sqrt(((0.01 - mean) ** 2 + (-0.02 - mean) ** 2 + (0.03 - mean) ** 2) / 2)
    report = risk_analysis(returns)
    assert report["annual_return"] == pytest.approx(mean * 252)
    assert report["information_ratio"] == pytest.approx(mean / std * math.sqrt(252))
    # Cumulative sum 0.01, -0.01, 0.02: 0.02 below its running maximum at the second day.
    assert report["max_drawdown"] == pytest.approx(-0.02)


def test_backtest_metrics_are_excess_returns_with_and_without_costs() -> None:
    daily = pd.DataFrame(
        {"gross": [0.02, 0.0, 0.01], "benchmark": [0.01, 0.01, 0.0], "cost": [0.001, 0.002, 0.0]}
    )
    metrics = backtest_metrics(daily)
    assert metrics["benchmark_annual_return"] == pytest.approx(0.02 / 3 * 252)
    assert metrics["excess_annual_return"] == pytest.approx(0.01 / 3 * 252)
    assert metrics["excess_net_annual_return"] == pytest.approx(0.007 / 3 * 252)
    assert metrics["excess_max_drawdown"] == pytest.approx(-0.01)
    assert metrics["excess_net_max_drawdown"] == pytest.approx(-0.012)


def test_newey_west_standard_error_by_hand() -> None:
    # Centred 1, 2, 3, 4: autocovariance 1.25 at lag 0 and 0.3125 at lag 1, Bartlett weight 1/2 at lag 1.
    assert mean_standard_error(pd.Series([1.0, 2.0, 3.0, 4.0]), lags=1) == pytest.approx(
        math.sqrt((1.25 + 2 * 0.5 * 0.3125) / 4)
    )


def test_scores_per_year_and_overall_by_hand() -> None:
    days = pd.to_datetime(["2020-06-01", "2020-06-02", "2021-06-01", "2021-06-02"])
    symbols = ["A", "B", "C"]
    predictions = pd.DataFrame(
        {
            "date": np.repeat(days, 3),
            "symbol": symbols * 4,
            "prediction": [1, 2, 3, 3, 2, 1, 1, 2, 3, 1, 3, 2],
        }
    )
    targets = predictions[["date", "symbol"]].assign(target=[0.1, 0.2, 0.3] * 4)
    returns = predictions[["date", "symbol"]].assign(next_return=0.0)
    scores = score_predictions(
        predictions, targets, returns, horizon=1, backtest=TopkDropoutConfig(k=1, n_drop=1)
    )
    # Daily rank ICs: 1, -1 in 2020; 1, 0.5 in 2021 (Spearman of 1,3,2 against 1,2,3).
    assert scores["2020"]["rank_ic"] == pytest.approx(0.0)
    assert scores["2021"]["rank_ic"] == pytest.approx(0.75)
    assert scores["all"]["rank_ic"] == pytest.approx(0.375)
    assert scores["2021"]["rank_icir"] == pytest.approx(0.75 / pd.Series([1.0, 0.5]).std())
    nw = mean_standard_error(pd.Series([1.0, -1.0, 1.0, 0.5]), lags=1)
    assert scores["all"]["rank_ic_tstat"] == pytest.approx(0.375 / nw)
    # Linear targets: Pearson equals Spearman here.
    assert scores["all"]["ic"] == pytest.approx(0.375)


def test_rank_ensemble_averages_per_date_ranks() -> None:
    day = DAYS[0]
    first = _frame([(day, "A", 10.0), (day, "B", 20.0), (day, "C", 30.0)], "prediction")
    second = _frame([(day, "A", 0.3), (day, "B", 0.1), (day, "C", 0.2)], "prediction")
    together = rank_ensemble([first, second]).set_index("symbol")["prediction"]
    assert together.to_dict() == pytest.approx({"A": 2 / 3, "B": 0.5, "C": 5 / 6})


def test_yearly_splits_purge_and_validate_before_each_test_year() -> None:
    dates = pd.bdate_range("2018-01-01", "2021-12-31")
    folds = yearly_splits(dates, [2020, 2021], horizon=5, validation_days=60, min_train_days=200)
    for fold, year in zip(folds, (2020, 2021), strict=True):
        assert set(fold.test.year) == {year}
        assert fold.test[0] == dates[dates.year == year][0]
        position = dates.get_indexer
        assert position([fold.test[0]])[0] - position([fold.validation[-1]])[0] == 6
        assert position([fold.validation[0]])[0] - position([fold.train[-1]])[0] == 6
        assert len(fold.validation) == 60 and fold.train[0] == dates[0]
    with pytest.raises(ValueError, match="test year 2018"):
        yearly_splits(dates, [2018], horizon=5, validation_days=60, min_train_days=200)
    with pytest.raises(ValueError, match="no labelled dates in test year 2030"):
        yearly_splits(dates, [2030], horizon=5, validation_days=60, min_train_days=200)


def test_years_option_reads_ranges_and_lists() -> None:
    assert parse_years("2008-2010,2015") == (2008, 2009, 2010, 2015)


def test_on_a_random_walk_the_rank_ic_stays_within_two_standard_errors(random_walk_dataset: Dataset) -> None:
    config = BenchmarkConfig(
        test_years=(2020, 2021),
        families=("xgboost",),
        seeds=(7, 11),
        validation_days=60,
        min_train_days=150,
        configs={"xgboost": XGBoostConfig(n_estimators=60, n_jobs=1)},
    )
    folds = folds_for(random_walk_dataset, config)
    predictions = fit_and_predict(random_walk_dataset, "xgboost", folds, config, progress=lambda _: None)
    targets = random_walk_dataset.frame[["date", "symbol", "target"]]
    rank_ic = daily_ic(predictions.merge(targets, on=["date", "symbol"]), rank=True)
    standard_error = mean_standard_error(rank_ic, lags=random_walk_dataset.horizon)
    assert len(rank_ic) > 400
    assert abs(rank_ic.mean()) < 2 * standard_error


def test_qlib_conversion_writes_dump_bin_layout(tmp_path: Path) -> None:
    days = pd.to_datetime(["2021-01-04", "2021-01-05", "2021-01-06"])
    prices = pd.DataFrame(
        {
            "date": [days[0], days[1], days[2], days[1], days[2]],
            "symbol": ["AAA", "AAA", "AAA", "BBB", "BBB"],
            "open": [1.0, 2.0, 3.0, 10.0, 11.0],
            "high": [2.0, 3.0, 4.0, 12.0, 13.0],
            "low": [0.5, 1.5, 2.5, 9.0, 10.0],
            "close": [1.5, 2.5, 3.5, 11.0, 12.0],
            "volume": [100.0, 200.0, 300.0, 50.0, 60.0],
            "factor": [0.5, 0.5, 1.0, 1.0, 1.0],
        }
    )
    write_qlib_data(prices, tmp_path)
    assert (tmp_path / "calendars" / "day.txt").read_text().split() == [
        "2021-01-04",
        "2021-01-05",
        "2021-01-06",
    ]
    assert (tmp_path / "instruments" / "all.txt").read_text().splitlines() == [
        "AAA\t2021-01-04\t2021-01-06",
        "BBB\t2021-01-05\t2021-01-06",
    ]
    # The first float is the symbol's first calendar index, then its values from there on.
    raw = np.fromfile(tmp_path / "features" / "bbb" / "close.day.bin", dtype="<f4")
    assert raw.tolist() == [1.0, 11.0, 12.0]
    assert read_qlib_field(tmp_path, "AAA", "factor").tolist() == [0.5, 0.5, 1.0]
    assert read_qlib_field(tmp_path, "BBB", "vwap").tolist() == pytest.approx([32 / 3, 35 / 3])


def test_bench_models_end_to_end_on_a_tiny_market(tmp_path: Path) -> None:
    data = write_csv_market(tmp_path / "csv", n_symbols=12)
    output = tmp_path / "leaderboard.md"
    with throwaway_database(migrated=False) as url:
        warehouse = url.rsplit("/", 1)[1] + "_bench"
        result = CliRunner().invoke(
            app,
            [
                "bench",
                "models",
                "--data", str(data),
                "--years", "2021",
                "--families", "xgboost,lstm",
                "--seeds", "7,11",
                "--min-train-days", "150",
                "--validation-days", "60",
                "--xgboost-rounds", "30",
                "--lstm-epochs", "1",
                "--lstm-samples", "2000",
                "--threads", "1",
                "--server-url", url,
                "--warehouse", warehouse,
                "--tracking-uri", sibling_database_url(url, "_mlflow"),
                "--output", str(output),
            ],
        )  # fmt: skip
        assert result.exit_code == 0, result.output + repr(result.exception)
        mlflow.set_tracking_uri(sibling_database_url(url, "_mlflow"))
        runs = mlflow.search_runs(
            experiment_names=["stockyard-bench-models"], order_by=["metrics.rank_ic DESC"]
        )
    table = output.read_text()
    for row in ("xgboost", "lstm", "ensemble"):
        assert f"| {row} | 2021 |" in table
    assert sorted(runs["tags.mlflow.runName"]) == ["ensemble", "lstm", "xgboost"]
    assert runs["tags.data_fingerprint"].nunique() == 1
    assert {"metrics.rank_ic_tstat", "metrics.2021/excess_net_annual_return"} <= set(runs.columns)
    assert "rank IC" in result.output and "net excess ann." in result.output
