"""bench/train: train each model family walk-forward on the marts of the real data and print wall time,
peak memory and the walk-forward metrics.

Assumes the pipeline has loaded the real S&P 500 data (`../shared/data`) into --database-url and built the
dbt marts. Each family runs in a fresh process, so its peak memory is its own; runs are logged to the
MLflow database beside the warehouse (`<name>_mlflow`). Targets on 2 cores: XGBoost on the full history
under 3 minutes, Prophet for every symbol under 10, LSTM training under 10, peak memory under 6 GB.

    .venv/bin/python -m bench.train --database-url postgresql://postgres@127.0.0.1:5432/stockyard \\
        [--families xgboost,lstm,prophet]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import psycopg

from bench._common import peak_rss_mb
from ml.config import LSTMConfig, ModelConfig, ProphetConfig, TrackingConfig, WalkForwardConfig, XGBoostConfig
from ml.datasets import load_dataset
from ml.metrics import CROSS_SECTIONAL_METRICS, FORECAST_METRICS
from ml.training import train
from stockyard.endpoints import sibling_database_url
from stockyard.settings import PROJECT_ROOT

CONFIGS: dict[str, ModelConfig] = {
    "xgboost": XGBoostConfig(),
    "lstm": LSTMConfig(),
    "prophet": ProphetConfig(),
}
TARGET_SECONDS = {"xgboost": 180.0, "lstm": 600.0, "prophet": 600.0}
TARGET_PEAK_MB = 6 * 1024
ARTIFACT_ROOT = PROJECT_ROOT / ".stockyard" / "bench" / "mlflow-artifacts"


@dataclass
class FamilyReport:
    family: str
    rows: int = 0
    symbols: int = 0
    dates: int = 0
    load_seconds: float = 0.0
    train_seconds: float = 0.0
    peak_mb: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)
    fold_rank_ic: list[float] = field(default_factory=list)
    model_version: str = ""


class TreeMemory:
    """Peak resident memory of this process and its children together (Prophet fits in worker
    processes), sampled in a thread."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        process = psutil.Process()
        while not self._stop.wait(self.interval):
            total = process.memory_info().rss
            for child in process.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += child.memory_info().rss
            self.peak_mb = max(self.peak_mb, total / (1 << 20))


def run_family(family: str, database_url: str, artifact_root: Path) -> FamilyReport:
    """Load the dataset and train one family (walk-forward, final model, MLflow), timing each part."""
    report = FamilyReport(family)
    started = time.perf_counter()
    with psycopg.connect(database_url) as conn:
        dataset = load_dataset(conn)
    report.load_seconds = time.perf_counter() - started
    report.rows, report.symbols = len(dataset.frame), int(dataset.frame["symbol"].nunique())
    report.dates = len(dataset.dates)

    tracking = TrackingConfig.for_database(
        sibling_database_url(database_url, "_mlflow"), artifact_root=artifact_root
    )
    started = time.perf_counter()
    with TreeMemory() as memory:
        result = train(dataset, CONFIGS[family], tracking=tracking, walk_forward_config=WalkForwardConfig())
    report.train_seconds = time.perf_counter() - started
    report.peak_mb = max(memory.peak_mb, peak_rss_mb())
    report.metrics = result.metrics
    report.fold_rank_ic = [fold["rank_ic"] for fold in result.fold_metrics]
    report.model_version = result.model_version
    return report


def _child(
    family: str, database_url: str, artifact_root: Path, results: multiprocessing.Queue[FamilyReport]
) -> None:
    results.put(run_family(family, database_url, artifact_root))


def run_isolated(family: str, database_url: str, artifact_root: Path) -> FamilyReport:
    """`run_family` in a fresh process, so the peak memory measured is this family's alone."""
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[FamilyReport] = context.Queue()
    process = context.Process(target=_child, args=(family, database_url, artifact_root, results))
    process.start()
    report: FamilyReport = results.get()
    process.join()
    return report


def print_report(report: FamilyReport) -> None:
    target = TARGET_SECONDS[report.family]
    print(f"== {report.family}")
    print(f"dataset:            {report.rows:>12,} rows  {report.symbols} symbols  {report.dates} dates")
    print(f"load dataset:       {report.load_seconds:>9.1f} s")
    # Training is the whole run: walk-forward folds, the final model and logging it to MLflow.
    print(f"train:              {report.train_seconds:>9.1f} s  (target < {target:.0f} s)")
    print(f"peak memory (with workers): {report.peak_mb:>5.0f} MB (target < {TARGET_PEAK_MB} MB)")
    for name in (*CROSS_SECTIONAL_METRICS, *FORECAST_METRICS):
        if name in report.metrics:
            print(f"  {name:<20} {report.metrics[name]:>10.4f}")
    print("  rank_ic per fold   " + "  ".join(f"{value:.4f}" for value in report.fold_rank_ic))
    print(f"registered version: {report.model_version}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True, help="warehouse with the dbt marts built")
    parser.add_argument("--families", default="xgboost,lstm,prophet")
    parser.add_argument("--artifact-root", type=Path, default=ARTIFACT_ROOT)
    args = parser.parse_args()
    # MLflow's download progress bars would bury the figures (the family processes inherit this).
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    families = [name.strip() for name in args.families.split(",") if name.strip()]
    unknown = set(families) - set(CONFIGS)
    if unknown:
        parser.error(f"unknown families: {', '.join(sorted(unknown))}")
    for family in families:
        print_report(run_isolated(family, args.database_url, args.artifact_root))


if __name__ == "__main__":
    main()
