"""The interface every model family implements, so one walk-forward loop trains and scores them all."""

from __future__ import annotations

from importlib.metadata import version
from typing import Protocol, Self

import pandas as pd
from mlflow.models.model import ModelInfo

from ml.datasets import Dataset

# The name a model is logged under inside its run.
MODEL_ARTIFACT = "model"


class Model(Protocol):
    @property
    def family(self) -> str:
        """The family's name (a class attribute of each family's model)."""

    def fit(self, dataset: Dataset, train: pd.DatetimeIndex, validation: pd.DatetimeIndex) -> None:
        """Fit on the dataset's `train` dates; `validation` dates (later, past a purge gap) stop training
        early. Targets of other dates must not be used."""

    def predict(self, dataset: Dataset, dates: pd.DatetimeIndex) -> pd.Series:
        """Scores for the dataset's rows on `dates`, indexed like them: higher means a higher expected
        forward excess return. Uses features (and prices) up to each row's date only."""

    def feature_importance(self, dataset: Dataset) -> pd.Series:
        """Importance per input, summing to 1."""

    def forecast_metrics(self, dataset: Dataset) -> dict[str, float]:
        """Accuracy of the model's own price forecasts (metrics.FORECAST_METRICS); empty for families that
        only score."""

    def log_model(self, dataset: Dataset, *, registered_model_name: str | None) -> ModelInfo:
        """Log to the active MLflow run with a signature and an input example, registering a new version
        of `registered_model_name` when given."""

    @classmethod
    def load(cls, model_uri: str) -> Self:
        """The model logged at `model_uri` (runs:/..., models:/name@alias)."""


def pinned_requirements(*packages: str) -> list[str]:
    """`package==installed version` for each package: what a logged model needs, without MLflow's slow
    requirement inference."""
    return [f"{package}=={version(package)}" for package in packages]
