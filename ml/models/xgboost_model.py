"""A cross-sectional gradient-boosted tree model (XGBoost, histogram method) over the features of one date.

Regression fits the per-date normalized target; ranking fits per-date quantile grades of the target with a
pairwise objective, each date one query group. Boosting stops when the mean daily rank IC on the
validation dates has not improved for `early_stopping_rounds`; the model keeps the best round's trees.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Self

import mlflow.xgboost
import numpy as np
import pandas as pd
import xgboost as xgb
from mlflow.models import infer_signature
from mlflow.models.model import ModelInfo

from ml.config import XGBoostConfig
from ml.datasets import LABEL, TARGET, Dataset
from ml.metrics import daily_ic
from ml.models.base import MODEL_ARTIFACT, pinned_requirements

INPUT_EXAMPLE_ROWS = 5
# XGBoost's binary format, which keeps the feature names.
BOOSTER_FILE = "booster.ubj"


class XGBoostModel:
    family: ClassVar[str] = "xgboost"
    packages: ClassVar[tuple[str, ...]] = ("xgboost", "pandas", "numpy")

    def __init__(self, config: XGBoostConfig | None = None, booster: xgb.Booster | None = None) -> None:
        self.config = config or XGBoostConfig()
        self._booster = booster

    @property
    def booster(self) -> xgb.Booster:
        if self._booster is None:
            raise RuntimeError("the model is not fitted")
        return self._booster

    def fit(self, dataset: Dataset, train: pd.DatetimeIndex, validation: pd.DatetimeIndex) -> None:
        train = strided_dates(train, self.config.train_date_stride, self.config.seed)
        train_rows = dataset.rows(train).dropna(subset=[LABEL])
        validation_rows = dataset.rows(validation).dropna(subset=[LABEL])
        train_matrix = self._matrix(train_rows, dataset.features)
        validation_matrix = self._matrix(validation_rows, dataset.features, reference=train_matrix)
        booster = xgb.train(
            self._params(),
            train_matrix,
            num_boost_round=self.config.n_estimators,
            evals=[(validation_matrix, "validation")],
            custom_metric=_rank_ic_metric(validation_rows),
            maximize=True,
            early_stopping_rounds=self.config.early_stopping_rounds,
            verbose_eval=False,
        )
        self._booster = booster[: booster.best_iteration + 1]

    def predict(self, dataset: Dataset, dates: pd.DatetimeIndex) -> pd.Series:
        rows = dataset.rows(dates)
        return pd.Series(self.predict_frame(rows), index=rows.index, name="prediction")

    def feature_importance(self, dataset: Dataset) -> pd.Series:
        gain = pd.Series(self.booster.get_score(importance_type="total_gain"), dtype=np.float64)
        importance = gain.reindex(self.features, fill_value=0.0)
        total = importance.sum()
        return importance / total if total > 0 else importance

    def forecast_metrics(self, dataset: Dataset) -> dict[str, float]:
        return {}

    def predict_frame(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.booster.inplace_predict(frame[self.features]), dtype=np.float64)

    @property
    def features(self) -> list[str]:
        """The features the booster was trained on, in its order."""
        return list(self.booster.feature_names or ())

    def input_example(self, dataset: Dataset) -> pd.DataFrame:
        return dataset.frame.loc[:, ["date", "symbol", *self.features]].tail(INPUT_EXAMPLE_ROWS)

    def log_model(self, dataset: Dataset, *, registered_model_name: str | None) -> ModelInfo:
        example = self.input_example(dataset).loc[:, self.features]
        signature = infer_signature(example, self.predict_frame(example))
        info: ModelInfo = mlflow.xgboost.log_model(
            self.booster,
            name=MODEL_ARTIFACT,
            signature=signature,
            input_example=example,
            registered_model_name=registered_model_name,
            pip_requirements=pinned_requirements(*self.packages),
        )
        return info

    @classmethod
    def load(cls, model_uri: str) -> Self:
        return cls(booster=mlflow.xgboost.load_model(model_uri))

    def save(self, folder: Path) -> None:
        self.booster.save_model(folder / BOOSTER_FILE)

    @classmethod
    def from_folder(cls, folder: Path) -> Self:
        return cls(booster=xgb.Booster(model_file=folder / BOOSTER_FILE))

    def _params(self) -> dict[str, object]:
        config = self.config
        return {
            "objective": "rank:pairwise" if config.objective == "ranking" else "reg:squarederror",
            "tree_method": "hist",
            "eta": config.learning_rate,
            "max_depth": config.max_depth,
            "min_child_weight": config.min_child_weight,
            "subsample": config.subsample,
            "colsample_bytree": config.colsample_bytree,
            "lambda": config.reg_lambda,
            "max_bin": config.max_bin,
            "nthread": config.n_jobs or os.cpu_count() or 1,
            "seed": config.seed,
            # Only the rank IC metric decides early stopping.
            "disable_default_eval_metric": 1,
        }

    def _matrix(
        self, rows: pd.DataFrame, features: tuple[str, ...], reference: xgb.QuantileDMatrix | None = None
    ) -> xgb.QuantileDMatrix:
        if self.config.objective == "ranking":
            label = _grades(rows, self.config.ranking_grades)
            # Rows are sorted by date, so the date codes are the sorted query ids ranking needs.
            qid = pd.factorize(rows["date"])[0]
        else:
            label, qid = rows[LABEL].to_numpy(np.float32), None
        return xgb.QuantileDMatrix(
            rows[list(features)],
            label=label,
            qid=qid,
            ref=reference,
            max_bin=self.config.max_bin,
            nthread=self.config.n_jobs or os.cpu_count() or 1,
        )


def strided_dates(dates: pd.DatetimeIndex, stride: int, seed: int) -> pd.DatetimeIndex:
    """Every `stride`-th of `dates`, counted back from the last, from `seed mod stride` dates before it."""
    return dates.sort_values()[::-1][seed % stride :: stride].sort_values()


def _grades(rows: pd.DataFrame, grades: int) -> np.ndarray:
    """Per date, the target's quantile bucket 0..grades-1 (a relevance grade for ranking)."""
    percentile = rows.groupby("date")[TARGET].rank(pct=True).to_numpy(np.float64)
    grade: np.ndarray = np.minimum(np.floor(percentile * grades), grades - 1).astype(np.float32)
    return grade


def _rank_ic_metric(rows: pd.DataFrame) -> Callable[[np.ndarray, xgb.DMatrix], tuple[str, float]]:
    """An XGBoost evaluation metric: the mean daily rank IC of the predictions on `rows`."""
    frame = rows.loc[:, ["date", TARGET]].rename(columns={TARGET: "target"})

    def rank_ic(predictions: np.ndarray, _matrix: xgb.DMatrix) -> tuple[str, float]:
        return "rank_ic", float(daily_ic(frame.assign(prediction=predictions), rank=True).mean())

    return rank_ic
