"""The seeds' ensemble of a stochastic family: one model per seed, predicting together as the mean of each
seed's per-date percentile rank. It is what the models benchmark scores as the family's row and what
training registers as the family's model.

Logged to MLflow as one pyfunc model: each seed's model saved in an artifact folder of its own, loaded
back with its family's class. The pyfunc takes a long frame with `date`, `symbol` and whatever the members
read (features; for the LSTM each symbol's earlier rows too) and answers a score per row.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

import mlflow.models
import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature
from mlflow.models.model import ModelInfo
from mlflow.pyfunc.model import PythonModel

from ml.datasets import Dataset
from ml.models.base import MODEL_ARTIFACT, Model, pinned_requirements
from ml.tracking import SEED_TAG

# The logged model's metadata entry that marks it as an ensemble: its seeds.
SEEDS_METADATA = "seeds"


class SeedModel(Model, Protocol):
    """A model of a stochastic family, as a member of its seeds' ensemble."""

    # The packages its saved form needs, pinned when it is logged.
    packages: ClassVar[tuple[str, ...]]

    def predict_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """A score per row of a long frame (date, symbol and what the model reads), in the frame's order."""

    def input_example(self, dataset: Dataset) -> pd.DataFrame:
        """A few rows of the dataset as `predict_frame` takes them, date and symbol included."""

    def save(self, folder: Path) -> None:
        """Write the fitted model to the (existing, empty) `folder`."""

    @classmethod
    def from_folder(cls, folder: Path) -> Self:
        """The model `save` wrote to `folder`."""


M = TypeVar("M", bound=SeedModel)


def rank_ensemble(predictions: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The mean per-date percentile rank of several prediction frames (date, symbol, prediction) over the
    (date, symbol) pairs they all score; one frame is returned as it is."""
    if len(predictions) == 1:
        return predictions[0].loc[:, ["date", "symbol", "prediction"]].reset_index(drop=True)
    ranks = [
        frame.dropna(subset=["prediction"])
        .assign(prediction=lambda f: f.groupby("date")["prediction"].rank(pct=True))
        .set_index(["date", "symbol"])["prediction"]
        for frame in predictions
    ]
    joined = pd.concat(ranks, axis=1, join="inner")
    return joined.mean(axis=1).rename("prediction").reset_index()


class SeedEnsemble(Generic[M]):
    """One model per seed (seed -> model, all of one family) and their rank ensemble (`rank_ensemble`); with
    one seed, that seed's model as it is."""

    def __init__(self, members: Mapping[int, M]) -> None:
        if not members:
            raise ValueError("an ensemble needs at least one seed's model")
        families = {member.family for member in members.values()}
        if len(families) > 1:
            raise ValueError(f"the seeds' models are of several families: {', '.join(sorted(families))}")
        self.members = dict(members)

    @property
    def family(self) -> str:
        return next(iter(self.members.values())).family

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(self.members)

    def fit(self, dataset: Dataset, train: pd.DatetimeIndex, validation: pd.DatetimeIndex) -> None:
        for member in self.members.values():
            member.fit(dataset, train, validation)

    def predict(self, dataset: Dataset, dates: pd.DatetimeIndex) -> pd.Series:
        keys = dataset.rows(dates).loc[:, ["date", "symbol"]]
        per_seed = [keys.assign(prediction=m.predict(dataset, dates)) for m in self.members.values()]
        return pd.Series(_aligned(rank_ensemble(per_seed), keys), index=keys.index, name="prediction")

    def predict_frame(self, frame: pd.DataFrame) -> np.ndarray:
        keys = frame.loc[:, ["date", "symbol"]]
        return _aligned(
            rank_ensemble([keys.assign(prediction=m.predict_frame(frame)) for m in self.members.values()]),
            keys,
        )

    def feature_importance(self, dataset: Dataset) -> pd.Series:
        """The mean of the seeds' importances (each sums to 1, so the mean does)."""
        importances = [member.feature_importance(dataset) for member in self.members.values()]
        return pd.concat(importances, axis=1).fillna(0.0).mean(axis=1)

    def forecast_metrics(self, dataset: Dataset) -> dict[str, float]:
        return {}

    def log_model(self, dataset: Dataset, *, registered_model_name: str | None) -> ModelInfo:
        first = next(iter(self.members.values()))
        example = first.input_example(dataset)
        signature = infer_signature(example, self.predict_frame(example))
        with tempfile.TemporaryDirectory() as scratch:
            artifacts = {}
            for seed, member in self.members.items():
                folder = Path(scratch) / _artifact_key(seed)
                folder.mkdir()
                member.save(folder)
                artifacts[_artifact_key(seed)] = str(folder)
            info: ModelInfo = mlflow.pyfunc.log_model(
                name=MODEL_ARTIFACT,
                python_model=SeedEnsemblePyfunc(type(first), self.seeds),
                artifacts=artifacts,
                signature=signature,
                input_example=example,
                registered_model_name=registered_model_name,
                pip_requirements=pinned_requirements(*first.packages),
                metadata={SEEDS_METADATA: list(self.seeds)},
            )
        return info

    @classmethod
    def load(cls, model_uri: str) -> Self:
        wrapper = mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
        if not isinstance(wrapper, SeedEnsemblePyfunc) or wrapper.ensemble is None:
            raise TypeError(f"{model_uri} is not a seeds' ensemble")
        # Of whichever family was logged: load_ensemble checks it.
        members: dict[int, Any] = wrapper.ensemble.members
        return cls(members)


def load_ensemble(model_uri: str, member_type: type[M]) -> SeedEnsemble[M]:
    """The ensemble logged at `model_uri`, checked to be of `member_type` models. A version registered as one
    seed's model (as before the families registered their seeds' ensembles, and may still hold an alias)
    loads as the ensemble of that seed alone."""
    info = mlflow.models.get_model_info(model_uri)
    if SEEDS_METADATA not in (info.metadata or {}):
        seed = int(MlflowClient().get_run(info.run_id).data.tags[SEED_TAG])
        return SeedEnsemble({seed: member_type.load(model_uri)})
    members = SeedEnsemble[Any].load(model_uri).members
    typed = {seed: member for seed, member in members.items() if isinstance(member, member_type)}
    if len(typed) != len(members):
        raise TypeError(f"{model_uri} is not an ensemble of {member_type.__name__} models")
    return SeedEnsemble(typed)


class SeedEnsemblePyfunc(PythonModel):
    """The MLflow face of an ensemble: a long frame (date, symbol, what the members read) in, a score per
    row out. The member class is pickled by reference; each seed's model is an artifact folder."""

    def __init__(self, member_type: type[SeedModel], seeds: Sequence[int]) -> None:
        self.member_type = member_type
        self.seeds = tuple(seeds)
        self.ensemble: SeedEnsemble[SeedModel] | None = None

    def load_context(self, context: Any) -> None:
        self.ensemble = SeedEnsemble(
            {
                seed: self.member_type.from_folder(Path(context.artifacts[_artifact_key(seed)]))
                for seed in self.seeds
            }
        )

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        if self.ensemble is None:
            raise RuntimeError("load_context has not run")
        return self.ensemble.predict_frame(model_input)


def _artifact_key(seed: int) -> str:
    return f"seed_{seed}"


def _aligned(ensembled: pd.DataFrame, keys: pd.DataFrame) -> np.ndarray:
    """The ensemble's predictions in the order of `keys` (date, symbol; unique), NaN where it has none."""
    by_key = ensembled.set_index(["date", "symbol"])["prediction"]
    aligned: np.ndarray = by_key.reindex(pd.MultiIndex.from_frame(keys)).to_numpy(np.float64)
    return aligned
