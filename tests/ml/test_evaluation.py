"""The families side by side, and the settings that size the training assets."""

from __future__ import annotations

import math

from ml.config import DatasetConfig, MLSettings, WalkForwardConfig
from ml.evaluation import Comparison, ModelSummary
from ml.promotion import PromotionRule, decide

WINDOW = "2024-01-02..2024-06-28"


def summary(family: str, rank_ic: float, *, window: str = WINDOW, promoted: bool = True) -> ModelSummary:
    metrics = {"rank_ic": rank_ic, "ic": rank_ic / 2}
    if family == "prophet":
        metrics["mape"] = 0.1
    decision = decide(
        PromotionRule(),
        evaluation_window=window,
        challenger_version="2",
        challenger_value=rank_ic,
        champion_version="1",
        champion_value=rank_ic - (0.01 if promoted else 0.0),
    )
    return ModelSummary(
        family=family,
        run_id=f"{family}-run-0123456789",
        run_url=f"http://127.0.0.1:5000/#/experiments/1/runs/{family}-run-0123456789",
        model_name=f"stockyard-{family}",
        model_version="2",
        metrics=metrics,
        fold_metrics=(metrics,),
        evaluation_window=window,
        dataset_fingerprint="abc",
        promotion=decision,
    )


def test_table_puts_the_families_side_by_side() -> None:
    comparison = Comparison((summary("xgboost", 0.03), summary("lstm", 0.02), summary("prophet", math.nan)))
    lines = comparison.table().splitlines()
    assert lines[0] == "| | xgboost | lstm | prophet |"
    assert f"| evaluation window | {WINDOW} | {WINDOW} | {WINDOW} |" in lines
    assert "| rank_ic | 0.0300 | 0.0200 |  |" in lines
    assert "| mape |  |  | 0.1000 |" in lines
    assert "| run | [xgboost-](http://127.0.0.1:5000/#/experiments/1/runs/xgboost-run-0123456789)" in lines[2]
    # Metrics no family has are left out.
    assert not any(line.startswith("| rmse") for line in lines)
    assert comparison.comparable and comparison.best() == comparison.summaries[0]


def test_families_on_different_windows_are_not_comparable() -> None:
    other = summary("lstm", 0.02, window="2024-02-01..2024-06-28")
    assert not Comparison((summary("xgboost", 0.03), other)).comparable


def test_champion_after_the_decision() -> None:
    assert summary("xgboost", 0.03).champion_version == "2"
    kept = summary("xgboost", 0.03, promoted=False)
    assert kept.promotion.alias == "challenger" and kept.champion_version == "1"
    assert kept.model_uri == "models:/stockyard-xgboost/2"


def test_settings_size_the_training(monkeypatch) -> None:
    monkeypatch.setenv("STOCKYARD_ML_FOLDS", "2")
    monkeypatch.setenv("STOCKYARD_ML_TEST_DAYS", "15")
    monkeypatch.setenv("STOCKYARD_ML_THREADS", "2")
    monkeypatch.setenv("STOCKYARD_ML_HORIZON", "21")
    monkeypatch.setenv("STOCKYARD_ML_FEATURE_SET", "all")
    monkeypatch.setenv("STOCKYARD_ML_MAX_TRAIN_DAYS", "500")
    settings = MLSettings()
    assert settings.walk_forward() == WalkForwardConfig(
        n_folds=2, test_days=15, validation_days=63, min_train_days=252, max_train_days=500
    )
    assert settings.dataset() == DatasetConfig(horizon=21, feature_set="all", label="rank")
    assert settings.xgboost().n_jobs == 2 and settings.prophet().n_jobs == 2
    assert settings.lstm().n_threads == 1
