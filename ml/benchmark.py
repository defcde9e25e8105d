"""The models benchmark: every family through one protocol, scored by one piece of code, side by side.

Protocol: one fold per test year (ml.splits.yearly_splits): train on every labelled date before the year (or
the last `max_train_days`), stop early on a validation block that ends a purge before the year, predict the
year. A stochastic family is fitted once per seed and its row is the seeds' ensemble (the mean of each
seed's per-date rank, ml.models.ensemble.rank_ensemble, as the model training registers predicts).
`ensemble` is the mean per-date rank of the families' rows. Predictions made elsewhere (Qlib's) enter as
frames of (date, symbol, prediction) and are scored by the same code.

Each row is scored per test year and over all test dates: the cross-sectional metrics of ml.metrics (IC,
ICIR, rank IC, rank ICIR, the rank IC's Newey-West t, all against the dataset's target, the forward excess
return over the horizon) and Qlib's top-k-with-dropout backtest (ml.topk_dropout) against the equal-weight
universe. Every row is logged as one run of one MLflow experiment, tagged with the fingerprint of the data,
so the leaderboard is that experiment's runs sorted by rank IC; the same leaderboard is written as Markdown.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace

import mlflow
import numpy as np
import pandas as pd
import psycopg

from ml.config import (
    STOCHASTIC_FAMILIES,
    LSTMConfig,
    ModelConfig,
    ProphetConfig,
    TrackingConfig,
    XGBoostConfig,
)
from ml.datasets import FORWARD_RETURNS_TABLE, LABEL, TARGET, Dataset, training_label
from ml.metrics import cross_sectional_metrics
from ml.models.ensemble import rank_ensemble
from ml.splits import Fold, yearly_splits
from ml.topk_dropout import TopkDropoutConfig, backtest_metrics, topk_dropout_daily
from ml.tracking import configure_tracking, git_commit
from ml.training import make_model

EXPERIMENT = "stockyard-bench-models"
ENSEMBLE = "ensemble"
ALL_YEARS = "all"
DEFAULT_CONFIGS: dict[str, ModelConfig] = {
    "xgboost": XGBoostConfig(),
    "lstm": LSTMConfig(),
    "prophet": ProphetConfig(),
}
# The columns of the printed table: (metric, header, format).
TABLE_COLUMNS = (
    ("ic", "IC", ".4f"),
    ("icir", "ICIR", ".3f"),
    ("rank_ic", "rank IC", ".4f"),
    ("rank_icir", "rank ICIR", ".3f"),
    ("rank_ic_tstat", "NW t", ".2f"),
    ("benchmark_annual_return", "EW ann.", ".2%"),
    ("excess_annual_return", "excess ann.", ".2%"),
    ("excess_information_ratio", "excess IR", ".2f"),
    ("excess_max_drawdown", "excess MDD", ".2%"),
    ("excess_net_annual_return", "net excess ann.", ".2%"),
    ("excess_net_information_ratio", "net IR", ".2f"),
    ("excess_net_max_drawdown", "net MDD", ".2%"),
)


@dataclass(frozen=True)
class BenchmarkConfig:
    test_years: tuple[int, ...]
    families: tuple[str, ...] = ("xgboost", "lstm", "prophet")
    seeds: tuple[int, ...] = (7, 11, 13)
    validation_days: int = 126
    min_train_days: int = 252
    # Rolling training window when set (trading days), else everything before the validation block.
    max_train_days: int | None = None
    # Trading days of the forward excess return the models are trained on; None: the dataset's horizon.
    label_horizon: int | None = None
    configs: Mapping[str, ModelConfig] = field(default_factory=lambda: dict(DEFAULT_CONFIGS))
    backtest: TopkDropoutConfig = field(default_factory=TopkDropoutConfig)

    def __post_init__(self) -> None:
        if not self.test_years:
            raise ValueError("name at least one test year")
        unknown = set(self.families) - set(self.configs)
        if unknown:
            raise ValueError(
                f"unknown families: {', '.join(sorted(unknown))} (known: {', '.join(self.configs)})"
            )
        if not self.seeds:
            raise ValueError("name at least one seed")


@dataclass(frozen=True)
class RowResult:
    """One row of the leaderboard: its out-of-sample predictions and their scores per period."""

    name: str
    predictions: pd.DataFrame
    # Period ("all" or a year) -> metric -> value.
    scores: dict[str, dict[str, float]]

    @property
    def overall(self) -> dict[str, float]:
        return self.scores[ALL_YEARS]

    @property
    def positive_years(self) -> int:
        return sum(1 for period, s in self.scores.items() if period != ALL_YEARS and s["rank_ic"] > 0)

    @property
    def years(self) -> int:
        return len(self.scores) - 1


def folds_for(dataset: Dataset, config: BenchmarkConfig) -> list[Fold]:
    """The yearly folds, purged by the longer of the evaluation and training label horizons."""
    horizon = max(dataset.horizon, config.label_horizon or 0)
    return yearly_splits(
        dataset.labelled_dates,
        config.test_years,
        horizon=horizon,
        validation_days=config.validation_days,
        min_train_days=config.min_train_days,
        max_train_days=config.max_train_days,
    )


def with_label_target(dataset: Dataset, label_target: pd.Series) -> Dataset:
    """The dataset trained on another target: `label_target` (the forward excess return of another horizon,
    aligned with the dataset's rows), made a label as the dataset's config says; scoring keeps the target."""
    frame = dataset.frame.assign(label_source=label_target.to_numpy())
    label = training_label(frame, "label_source", dataset.config)
    return replace(dataset, frame=frame.assign(**{LABEL: label}).drop(columns=["label_source"]))


def fit_and_predict(
    dataset: Dataset,
    family: str,
    folds: Sequence[Fold],
    config: BenchmarkConfig,
    progress: Callable[[str], None] = print,
) -> pd.DataFrame:
    """The family's out-of-sample predictions (date, symbol, prediction) on every fold's test dates: the
    ensemble of its seeds' per-date ranks when it is stochastic."""
    seeds = config.seeds if family in STOCHASTIC_FAMILIES else config.seeds[:1]
    parts = []
    for fold in folds:
        per_seed = []
        for seed in seeds:
            model = make_model(replace(config.configs[family], seed=seed))
            model.fit(dataset, fold.train, fold.validation)
            scores = model.predict(dataset, fold.test)
            rows = dataset.frame.loc[scores.index, ["date", "symbol"]].assign(prediction=scores)
            per_seed.append(rows)
            progress(f"{family} seed {seed} test year {fold.test[0].year}: fitted on {len(fold.train)} dates")
        parts.append(rank_ensemble(per_seed))
    return pd.concat(parts, ignore_index=True)


def score_predictions(
    predictions: pd.DataFrame,
    targets: pd.DataFrame,
    next_returns: pd.DataFrame,
    *,
    horizon: int,
    backtest: TopkDropoutConfig,
) -> dict[str, dict[str, float]]:
    """Per test year and over all of them: the cross-sectional metrics against `targets` (date, symbol,
    target) and the top-k-dropout backtest on `next_returns` (date, symbol, next_return)."""
    scored = predictions.merge(targets, on=["date", "symbol"], how="inner")
    daily = topk_dropout_daily(scored, next_returns, backtest)
    years = pd.DatetimeIndex(scored["date"]).year
    daily_years = pd.DatetimeIndex(daily["date"]).year
    periods: list[tuple[str, np.ndarray, np.ndarray]] = [
        (ALL_YEARS, np.ones(len(scored), bool), np.ones(len(daily), bool))
    ]
    periods += [(str(year), years == year, daily_years == year) for year in sorted(set(years))]
    return {
        period: cross_sectional_metrics(scored.loc[rows], horizon) | backtest_metrics(daily.loc[days])
        for period, rows, days in periods
    }


def targets_of(dataset: Dataset, dates: pd.DatetimeIndex) -> pd.DataFrame:
    return dataset.rows(dates).loc[:, ["date", "symbol", TARGET]].rename(columns={TARGET: "target"})


def load_next_returns(conn: psycopg.Connection, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Each (date, symbol)'s return from its close to the next close, between two dates."""
    rows = conn.execute(
        f"select date, symbol, forward_return_1d from {FORWARD_RETURNS_TABLE} "
        "where date between %s and %s and forward_return_1d is not null",
        (start.date(), end.date()),
    ).fetchall()
    frame = pd.DataFrame(rows, columns=["date", "symbol", "next_return"])
    frame["date"] = pd.to_datetime(frame["date"]).astype("datetime64[ns]")
    frame["next_return"] = frame["next_return"].astype(np.float64)
    return frame


def load_label_target(conn: psycopg.Connection, dataset: Dataset, horizon: int) -> pd.Series:
    """The forward excess return over `horizon` for each of the dataset's rows (NaN where unknown)."""
    window = dataset.window
    rows = conn.execute(
        f"select date, symbol, excess_forward_return_{horizon}d from {FORWARD_RETURNS_TABLE} "
        "where date between %s and %s",
        (window.start, window.end),
    ).fetchall()
    values = pd.DataFrame(rows, columns=["date", "symbol", "value"])
    values["date"] = pd.to_datetime(values["date"]).astype("datetime64[ns]")
    keys = pd.MultiIndex.from_frame(dataset.frame[["date", "symbol"]])
    aligned = values.set_index(["date", "symbol"])["value"].astype(np.float64).reindex(keys)
    return pd.Series(aligned.to_numpy(), index=dataset.frame.index)


def run_benchmark(
    dataset: Dataset,
    next_returns: pd.DataFrame,
    config: BenchmarkConfig,
    *,
    external: Mapping[str, pd.DataFrame] | None = None,
    progress: Callable[[str], None] = print,
) -> list[RowResult]:
    """Every family of the config, their ensemble and the `external` predictions (name -> frame), scored."""
    folds = folds_for(dataset, config)
    test_dates = pd.DatetimeIndex(np.concatenate([fold.test for fold in folds]))
    targets = targets_of(dataset, test_dates)
    predictions = {
        family: fit_and_predict(dataset, family, folds, config, progress) for family in config.families
    }
    if len(predictions) > 1:
        predictions[ENSEMBLE] = rank_ensemble(list(predictions.values()))
    for name, frame in (external or {}).items():
        predictions[name] = frame.loc[frame["date"].isin(test_dates), ["date", "symbol", "prediction"]]
    return [
        RowResult(
            name=name,
            predictions=frame,
            scores=score_predictions(
                frame, targets, next_returns, horizon=dataset.horizon, backtest=config.backtest
            ),
        )
        for name, frame in predictions.items()
    ]


def leaderboard(rows: Sequence[RowResult]) -> list[RowResult]:
    """Rows by their rank IC over all test dates, best first."""
    return sorted(rows, key=lambda row: _or_minus_infinity(row.overall["rank_ic"]), reverse=True)


def markdown_table(rows: Sequence[RowResult], *, per_year: bool = True) -> str:
    """The leaderboard as Markdown: one line per row over all test years (with how many years its rank IC
    was positive), then, with `per_year`, one line per row and year."""
    header = ["model", "years", "rank IC > 0", *(title for _, title, _ in TABLE_COLUMNS)]
    lines = [_markdown_line(header), _markdown_line(["---"] * len(header))]
    ordered = leaderboard(rows)
    for row in ordered:
        years = [period for period in row.scores if period != ALL_YEARS]
        span = f"{years[0]}-{years[-1]}" if len(years) > 1 else years[0]
        lines.append(
            _markdown_line([row.name, span, f"{row.positive_years}/{row.years}", *_cells(row.overall)])
        )
    if per_year:
        for row in ordered:
            for period, scores in row.scores.items():
                if period != ALL_YEARS:
                    lines.append(_markdown_line([row.name, period, "", *_cells(scores)]))
    return "\n".join(lines)


def log_to_mlflow(
    rows: Sequence[RowResult],
    tracking: TrackingConfig,
    *,
    data_fingerprint: str,
    dataset: Dataset,
    config: BenchmarkConfig,
    feature_set: str,
    table: str,
) -> list[str]:
    """One run per row in the benchmark's experiment: its overall metrics under their names, each year's
    as `<year>/<name>`, the benchmark's settings as params, the data fingerprint as a tag; returns the run
    ids."""
    client = configure_tracking(tracking)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        location = None
        if tracking.artifact_root is not None:
            folder = tracking.artifact_root / EXPERIMENT
            folder.mkdir(parents=True, exist_ok=True)
            location = folder.as_uri()
        experiment_id = client.create_experiment(EXPERIMENT, artifact_location=location)
    else:
        experiment_id = experiment.experiment_id
    params = {
        "test_years": ",".join(map(str, config.test_years)),
        "seeds": ",".join(map(str, config.seeds)),
        "validation_days": config.validation_days,
        "min_train_days": config.min_train_days,
        "max_train_days": config.max_train_days,
        "label": dataset.config.label,
        "label_horizon": config.label_horizon or dataset.horizon,
        "horizon": dataset.horizon,
        "features": feature_set,
        "feature_count": len(dataset.features),
        "symbols": dataset.frame["symbol"].nunique(),
        **{f"backtest.{name}": value for name, value in asdict(config.backtest).items()},
    }
    run_ids = []
    for row in rows:
        tags = {
            "data_fingerprint": data_fingerprint,
            "dataset_fingerprint": dataset.fingerprint,
            "family": row.name,
            "features": feature_set,
            "git_commit": git_commit(),
            "synthetic": str(dataset.synthetic).lower(),
        }
        with mlflow.start_run(experiment_id=experiment_id, run_name=row.name, tags=tags) as run:
            family_config = config.configs.get(row.name)
            mlflow.log_params(
                params
                | (
                    {f"model.{k}": v for k, v in asdict(family_config).items() if k != "seed"}
                    if family_config is not None
                    else {}
                )
            )
            metrics = {name: value for name, value in row.overall.items() if math.isfinite(value)}
            metrics["positive_years"] = row.positive_years
            for period, scores in row.scores.items():
                if period != ALL_YEARS:
                    metrics |= {f"{period}/{k}": v for k, v in scores.items() if math.isfinite(v)}
            mlflow.log_metrics(metrics)
            mlflow.log_text(table, "leaderboard.md")
            run_ids.append(run.info.run_id)
    return run_ids


def _cells(scores: Mapping[str, float]) -> list[str]:
    return [
        "" if not math.isfinite(value := scores.get(name, math.nan)) else format(value, spec)
        for name, _, spec in TABLE_COLUMNS
    ]


def _markdown_line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _or_minus_infinity(value: float) -> float:
    return value if math.isfinite(value) else -math.inf
