"""The model families on small in-memory data: each finds a planted signal; the LSTM is deterministic."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from ml.config import LSTMConfig, WalkForwardConfig, XGBoostConfig
from ml.datasets import TARGET, Dataset
from ml.metrics import daily_ic
from ml.models.lstm_model import LSTMModel
from ml.models.xgboost_model import XGBoostModel, strided_dates
from ml.splits import walk_forward_splits
from tests.ml.support import synthetic_dataset

SPLIT = walk_forward_splits(
    synthetic_dataset().dataset.labelled_dates,
    WalkForwardConfig(n_folds=1, test_days=60, validation_days=40, min_train_days=100),
    horizon=5,
)[0]
LSTM = LSTMConfig(
    sequence_length=5,
    hidden_size=8,
    epochs=4,
    batch_size=256,
    samples_per_epoch=None,
    learning_rate=3e-3,
    n_threads=1,
)


def rank_ic(dataset: Dataset, scores: pd.Series) -> float:
    scored = dataset.frame.loc[scores.index, ["date", TARGET]].rename(columns={TARGET: "target"})
    return float(daily_ic(scored.assign(prediction=scores), rank=True).mean())


@pytest.mark.parametrize("objective", ["regression", "ranking"])
def test_xgboost_finds_the_planted_signal(objective: str) -> None:
    market = synthetic_dataset()
    # Every training date: the synthetic market is small.
    config = XGBoostConfig(
        objective=objective, n_estimators=60, early_stopping_rounds=10, train_date_stride=1, n_jobs=1
    )
    model = XGBoostModel(config)
    model.fit(market.dataset, SPLIT.train, SPLIT.validation)
    assert rank_ic(market.dataset, model.predict(market.dataset, SPLIT.test)) > 0.15
    importance = model.feature_importance(market.dataset)
    assert importance.idxmax() == market.signal and importance.sum() == pytest.approx(1.0)


def test_xgboost_fits_every_strideth_date_picked_by_its_seed() -> None:
    dates = pd.bdate_range("2024-01-01", periods=12)
    assert strided_dates(dates, 5, seed=7).equals(dates[[4, 9]])
    assert strided_dates(dates, 5, seed=10).equals(dates[[1, 6, 11]])
    assert strided_dates(dates, 1, seed=7).equals(dates)


def test_lstm_finds_the_planted_signal_and_is_deterministic() -> None:
    market = synthetic_dataset()
    models = [LSTMModel(replace(LSTM, seed=seed)) for seed in (7, 7, 8)]
    for model in models:
        model.fit(market.dataset, SPLIT.train, SPLIT.validation)
    runs = [model.predict(market.dataset, SPLIT.test) for model in models]
    assert rank_ic(market.dataset, runs[0]) > 0.15
    pd.testing.assert_series_equal(runs[0], runs[1], check_exact=True)
    assert not runs[0].equals(runs[2])
    assert models[0].feature_importance(market.dataset).idxmax() == market.signal


def test_lstm_leaves_the_callers_random_state_alone() -> None:
    market = synthetic_dataset(n_days=200)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    LSTMModel(LSTM).fit(market.dataset, SPLIT.train[:80], SPLIT.validation)
    assert torch.equal(torch.rand(3), expected)


def test_lstm_windows_use_only_the_symbols_past() -> None:
    market = synthetic_dataset(n_symbols=3, n_days=30)
    model = LSTMModel(LSTM)
    model.fit(market.dataset, market.dataset.dates[:15], market.dataset.dates[15:20])
    frame = market.dataset.frame[["symbol", "date", *market.dataset.features]]
    scores = model.predict_frame(frame)
    # A row's score does not change when later rows (or other symbols) are dropped.
    first = frame.loc[frame["symbol"] == "S00"].iloc[:12]
    np.testing.assert_allclose(model.predict_frame(first), scores[first.index], rtol=1e-5)


def test_lstm_uses_cuda_when_present(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert LSTMModel(LSTMConfig()).device.type == "cuda"
    assert LSTMModel(LSTMConfig(device="cpu")).device.type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert LSTMModel(LSTMConfig()).device.type == "cpu"
