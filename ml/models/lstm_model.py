"""An LSTM over each symbol's last `sequence_length` days of (normalized) features, predicting the same
per-date normalized forward excess return as the tree model.

Seeded and deterministic on CPU: the weights are initialized and the epochs' samples drawn from the
configured seed, inside a forked RNG so the caller's random state is left alone. Runs on CUDA when present
(config.device "auto"). Training stops when the validation dates' mean daily rank IC has not improved for
`patience` epochs and keeps the best epoch's weights.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar, Self

import mlflow.pyfunc
import numpy as np
import pandas as pd
import torch
from mlflow.models import infer_signature
from mlflow.models.model import ModelInfo
from mlflow.pyfunc.model import PythonModel
from torch import nn

from ml.config import LSTMConfig
from ml.datasets import LABEL, TARGET, Dataset
from ml.metrics import daily_ic
from ml.models.base import MODEL_ARTIFACT, pinned_requirements

PREDICT_BATCH = 8192
# The last labelled dates permutation importance is measured on.
IMPORTANCE_DATES = 63
INPUT_EXAMPLE_SYMBOLS = 2
WEIGHTS_FILE, SPEC_FILE = "weights.pt", "spec.json"


class _Network(nn.Module):
    def __init__(self, n_features: int, config: LSTMConfig) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            n_features,
            config.hidden_size,
            num_layers=config.num_layers,
            batch_first=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        self.head = nn.Linear(config.hidden_size, 1)

    def forward(self, sequences: torch.Tensor) -> torch.Tensor:
        output, _ = self.lstm(sequences)
        result: torch.Tensor = self.head(output[:, -1]).squeeze(-1)
        return result


class _Sequences:
    """The frame's features ordered by symbol then date, to cut each row's window of the days up to it.

    Missing features are 0 (the cross-sectional mean after normalization); days before a symbol's first row
    are zero-padded, so every row has a window.
    """

    def __init__(self, frame: pd.DataFrame, features: tuple[str, ...], length: int) -> None:
        symbol_codes = pd.factorize(frame["symbol"])[0]
        order = np.lexsort((frame["date"].to_numpy(), symbol_codes))
        values = np.nan_to_num(frame[list(features)].to_numpy(np.float32)[order])
        self.values = torch.from_numpy(values)
        self.length = length
        # Where each frame row sits in that order, and where its symbol's block starts.
        self.position = np.empty(len(order), dtype=np.int64)
        self.position[order] = np.arange(len(order))
        ordered_codes = symbol_codes[order]
        new_block = np.r_[True, ordered_codes[1:] != ordered_codes[:-1]]
        self.block_start = np.maximum.accumulate(np.where(new_block, np.arange(len(order)), 0))

    def windows(self, rows: np.ndarray) -> torch.Tensor:
        """The windows ending at frame rows `rows` (positions): (rows, length, features)."""
        end = self.position[rows]
        index = end[:, None] - np.arange(self.length - 1, -1, -1)[None, :]
        inside = index >= self.block_start[end][:, None]
        windows = self.values[torch.from_numpy(np.where(inside, index, end[:, None]))]
        return windows * torch.from_numpy(inside)[:, :, None]


class LSTMModel:
    family: ClassVar[str] = "lstm"
    packages: ClassVar[tuple[str, ...]] = ("torch", "pandas", "numpy")

    def __init__(
        self,
        config: LSTMConfig | None = None,
        features: tuple[str, ...] = (),
        state: dict[str, torch.Tensor] | None = None,
    ) -> None:
        self.config = config or LSTMConfig()
        self.features = features
        self.device = torch.device(
            ("cuda" if torch.cuda.is_available() else "cpu")
            if self.config.device == "auto"
            else self.config.device
        )
        self._network: _Network | None = None
        if state is not None:
            self._network = _Network(len(features), self.config)
            self._network.load_state_dict(state)
            self._network.to(self.device)

    @property
    def network(self) -> _Network:
        if self._network is None:
            raise RuntimeError("the model is not fitted")
        return self._network

    def fit(self, dataset: Dataset, train: pd.DatetimeIndex, validation: pd.DatetimeIndex) -> None:
        config = self.config
        self.features = dataset.features
        sequences = _Sequences(dataset.frame, self.features, config.sequence_length)
        train_rows = _positions(dataset, dataset.rows(train).dropna(subset=[LABEL]))
        validation_frame = dataset.rows(validation).dropna(subset=[TARGET])
        validation_rows = _positions(dataset, validation_frame)
        labels = torch.tensor(dataset.frame[LABEL].to_numpy(np.float32))
        scored = validation_frame.loc[:, ["date", TARGET]].rename(columns={TARGET: "target"})

        fork_devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with _cpu_threads(config.n_threads), torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(config.seed)
            network = _Network(len(self.features), config).to(self.device)
            optimizer = torch.optim.Adam(
                network.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
            )
            generator = torch.Generator().manual_seed(config.seed)
            per_epoch = min(config.samples_per_epoch or len(train_rows), len(train_rows))
            best_score, best_state, stale = -np.inf, _cpu_state(network), 0
            for _epoch in range(config.epochs):
                network.train()
                drawn = train_rows[torch.randperm(len(train_rows), generator=generator)[:per_epoch].numpy()]
                for batch in np.array_split(drawn, max(1, -(-len(drawn) // config.batch_size))):
                    inputs = sequences.windows(batch).to(self.device)
                    loss = nn.functional.mse_loss(network(inputs), labels[batch].to(self.device))
                    optimizer.zero_grad()
                    torch.autograd.backward(loss)
                    nn.utils.clip_grad_norm_(network.parameters(), 1.0)
                    optimizer.step()
                scores = self._scores(network, sequences, validation_rows)
                score = float(daily_ic(scored.assign(prediction=scores), rank=True).mean())
                if score > best_score:
                    best_score, best_state, stale = score, _cpu_state(network), 0
                else:
                    stale += 1
                    if stale >= config.patience:
                        break
            network.load_state_dict(best_state)
        self._network = network

    def predict(self, dataset: Dataset, dates: pd.DatetimeIndex) -> pd.Series:
        rows = dataset.rows(dates)
        sequences = _Sequences(dataset.frame, self.features, self.config.sequence_length)
        scores = self._scores(self.network, sequences, _positions(dataset, rows))
        return pd.Series(scores, index=rows.index, name="prediction")

    def predict_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """A score for every row of a long frame (symbol, date, normalized features), each from the rows of
        its symbol up to its date."""
        frame = frame.reset_index(drop=True)
        sequences = _Sequences(frame, self.features, self.config.sequence_length)
        return self._scores(self.network, sequences, np.arange(len(frame)))

    def feature_importance(self, dataset: Dataset) -> pd.Series:
        """Permutation importance: how much the mean daily rank IC over the last labelled dates falls when
        one feature is shuffled across all rows, floored at 0 and scaled to sum 1."""
        sequences = _Sequences(dataset.frame, self.features, self.config.sequence_length)
        recent = dataset.rows(dataset.labelled_dates[-IMPORTANCE_DATES:]).dropna(subset=[TARGET])
        rows = _positions(dataset, recent)
        scored = recent.loc[:, ["date", TARGET]].rename(columns={TARGET: "target"})

        def rank_ic() -> float:
            scores = self._scores(self.network, sequences, rows)
            return float(daily_ic(scored.assign(prediction=scores), rank=True).mean())

        baseline = rank_ic()
        generator = np.random.default_rng(self.config.seed)
        drops = {}
        for column, name in enumerate(self.features):
            original = sequences.values[:, column].clone()
            shuffled = torch.from_numpy(generator.permutation(len(original)))
            sequences.values[:, column] = original[shuffled]
            drops[name] = max(0.0, baseline - rank_ic())
            sequences.values[:, column] = original
        importance = pd.Series(drops, dtype=np.float64)
        total = importance.sum()
        return importance / total if total > 0 else importance

    def forecast_metrics(self, dataset: Dataset) -> dict[str, float]:
        return {}

    def input_example(self, dataset: Dataset) -> pd.DataFrame:
        """The last `sequence_length` rows of the last symbols: the windows their last rows need."""
        last_symbols = dataset.frame["symbol"].iloc[-INPUT_EXAMPLE_SYMBOLS:]
        return (
            dataset.frame.loc[dataset.frame["symbol"].isin(last_symbols), ["symbol", "date", *self.features]]
            .groupby("symbol")
            .tail(self.config.sequence_length)
            .reset_index(drop=True)
        )

    def log_model(self, dataset: Dataset, *, registered_model_name: str | None) -> ModelInfo:
        example = self.input_example(dataset)
        signature = infer_signature(example, self.predict_frame(example))
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch)
            self.save(folder)
            info: ModelInfo = mlflow.pyfunc.log_model(
                name=MODEL_ARTIFACT,
                python_model=LSTMPyfunc(),
                artifacts={"weights": str(folder / WEIGHTS_FILE), "spec": str(folder / SPEC_FILE)},
                signature=signature,
                input_example=example,
                registered_model_name=registered_model_name,
                pip_requirements=pinned_requirements(*self.packages),
            )
        return info

    def save(self, folder: Path) -> None:
        torch.save(_cpu_state(self.network), folder / WEIGHTS_FILE)
        spec = {"config": asdict(self.config), "features": list(self.features)}
        (folder / SPEC_FILE).write_text(json.dumps(spec))

    def _scores(self, network: _Network, sequences: _Sequences, rows: np.ndarray) -> np.ndarray:
        network.eval()
        scores = np.empty(len(rows), dtype=np.float64)
        with _cpu_threads(self.config.n_threads), torch.no_grad():
            for first in range(0, len(rows), PREDICT_BATCH):
                batch = rows[first : first + PREDICT_BATCH]
                windows = sequences.windows(batch).to(self.device)
                scores[first : first + len(batch)] = network(windows).cpu().numpy()
        return scores

    @classmethod
    def load(cls, model_uri: str) -> Self:
        wrapper = mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
        if not isinstance(wrapper, LSTMPyfunc) or wrapper.model is None:
            raise TypeError(f"{model_uri} is not an LSTM model")
        return cls(wrapper.model.config, wrapper.model.features, _cpu_state(wrapper.model.network))

    @classmethod
    def from_folder(cls, folder: Path) -> Self:
        return cls.from_files(folder / WEIGHTS_FILE, folder / SPEC_FILE)

    @classmethod
    def from_files(cls, weights: Path, spec: Path) -> Self:
        saved = json.loads(spec.read_text())
        state = torch.load(weights, map_location="cpu", weights_only=True)
        return cls(LSTMConfig(**saved["config"]), tuple(saved["features"]), state)


class LSTMPyfunc(PythonModel):
    """The MLflow face of the LSTM: a long frame of (symbol, date, features) in, one score per row out."""

    model: LSTMModel | None = None

    def load_context(self, context: Any) -> None:
        self.model = LSTMModel.from_files(Path(context.artifacts["weights"]), Path(context.artifacts["spec"]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        if self.model is None:
            raise RuntimeError("load_context has not run")
        return self.model.predict_frame(model_input)


def _positions(dataset: Dataset, rows: pd.DataFrame) -> np.ndarray:
    return np.asarray(dataset.frame.index.get_indexer(rows.index), dtype=np.int64)


@contextmanager
def _cpu_threads(count: int | None) -> Iterator[None]:
    """torch's CPU thread count set to `count` for the block (it is process-wide), when given."""
    if count is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _cpu_state(network: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().cpu().clone() for name, tensor in network.state_dict().items()}
