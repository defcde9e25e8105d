"""The families side by side: what a training run leaves for the comparison (a small summary, cheap to pass
between processes) and the comparison of their metrics on one evaluation window; and what each seed's
training leaves for the family's run."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ml.datasets import DateWindow
from ml.metrics import CROSS_SECTIONAL_METRICS, FORECAST_METRICS
from ml.promotion import PromotionDecision

if TYPE_CHECKING:
    from ml.training import TrainingResult


@dataclass(frozen=True)
class SeedRun:
    """One seed's training, logged as a run of its own: what the family's run is made from. Small, so it
    passes between processes."""

    family: str
    seed: int
    run_id: str
    # The logged model (models:/<model id>), not registered.
    model_id: str
    metrics: dict[str, float]
    fold_metrics: tuple[dict[str, float], ...]
    evaluation_window: DateWindow

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_id}"


@dataclass(frozen=True)
class ModelSummary:
    """One family's training run: where it is, what it scored and what became of its model version."""

    family: str
    run_id: str
    run_url: str
    model_name: str
    model_version: str
    metrics: dict[str, float]
    fold_metrics: tuple[dict[str, float], ...]
    evaluation_window: str
    dataset_fingerprint: str
    promotion: PromotionDecision

    @classmethod
    def of(cls, result: TrainingResult) -> ModelSummary:
        return cls(
            family=result.family,
            run_id=result.run_id,
            run_url=result.run_url,
            model_name=result.model_name,
            model_version=result.model_version,
            metrics=dict(result.metrics),
            fold_metrics=result.fold_metrics,
            evaluation_window=str(result.evaluation_window),
            dataset_fingerprint=result.dataset_fingerprint,
            promotion=result.promotion,
        )

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_name}/{self.model_version}"

    @property
    def champion_version(self) -> str | None:
        """The champion right after this run's decision: this version when promoted, else the one kept."""
        return self.model_version if self.promotion.promoted else self.promotion.champion_version


@dataclass(frozen=True)
class Comparison:
    summaries: tuple[ModelSummary, ...]

    @property
    def comparable(self) -> bool:
        """Whether every family was evaluated on the same dates of the same data."""
        return len({(s.evaluation_window, s.dataset_fingerprint) for s in self.summaries}) == 1

    def best(self, metric: str = "rank_ic") -> ModelSummary | None:
        """The family with the highest `metric`, among those that have it."""
        scored = [s for s in self.summaries if not math.isnan(s.metrics.get(metric, math.nan))]
        return max(scored, key=lambda s: s.metrics[metric]) if scored else None

    def table(self) -> str:
        """Markdown: one row per metric (and the run, model version and window), one column per family."""
        header = "| | " + " | ".join(s.family for s in self.summaries) + " |"
        rule = "|---|" + "---|" * len(self.summaries)
        rows = [
            _row("run", [f"[{s.run_id[:8]}]({s.run_url})" for s in self.summaries]),
            _row("model", [f"{s.model_name} v{s.model_version}" for s in self.summaries]),
            _row("alias", [s.promotion.alias for s in self.summaries]),
            _row("evaluation window", [s.evaluation_window for s in self.summaries]),
        ]
        names = [*CROSS_SECTIONAL_METRICS, *FORECAST_METRICS]
        rows += [
            _row(name, [_number(s.metrics.get(name)) for s in self.summaries])
            for name in names
            if any(name in s.metrics for s in self.summaries)
        ]
        return "\n".join([header, rule, *rows])


def _row(label: str, cells: Sequence[str]) -> str:
    return f"| {label} | " + " | ".join(cells) + " |"


def _number(value: float | None) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.4f}"
