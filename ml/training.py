"""Training runs: walk-forward evaluation, a final model, and everything logged, registered and decided in
MLflow. One function per family (train_xgboost, train_lstm, train_prophet) over one shared flow, `train`.

A stochastic family (XGBoost, LSTM) trains once per seed, each seed on its own (`train_seed`, a step of its
own in Dagster, so seeds train in parallel where there are workers), as a child run. `register_training`
then makes the family's run, the parent of the seeds' runs, whose model is the seeds' ensemble
(ml.models.ensemble: the mean of the seeds' per-date ranks, the models benchmark's row of the family) and
whose walk-forward is the seeds' out-of-sample predictions ensembled the same way, date by date; that
model is registered from there. With one seed the ensemble predicts as that seed's model. Prophet, whose fit
is deterministic, trains once, as the one child of its run, whose run and model its family's run takes.

A family's run records: the configs (params and config.json, with the seeds), overall metrics under their
plain names and each fold's as `fold_<k>/<name>`, the feature importance, the IC time series and long-short
equity plots, the out-of-sample predictions, the model (signature and input example) as a new version of
`stockyard-<family>` with the alias `challenger`, the seeds, and the promotion decision. A seed's run
records the same for its seed, its model logged but not registered.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import mlflow
import mlflow.artifacts
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ml.config import (
    STOCHASTIC_FAMILIES,
    LSTMConfig,
    ModelConfig,
    ProphetConfig,
    TrackingConfig,
    WalkForwardConfig,
    XGBoostConfig,
)
from ml.datasets import TARGET, Dataset, DateWindow
from ml.evaluation import SeedRun
from ml.metrics import FORECAST_METRICS, cross_sectional_metrics, daily_ic, long_short_returns
from ml.models.base import Model
from ml.models.ensemble import SeedEnsemble, rank_ensemble
from ml.models.lstm_model import LSTMModel
from ml.models.prophet_model import ProphetModel
from ml.models.xgboost_model import XGBoostModel
from ml.promotion import PromotionDecision, PromotionRule, decide
from ml.reports import save_equity_curve, save_feature_importance, save_ic_plot
from ml.splits import Fold, final_split, walk_forward_splits
from ml.tracking import (
    CHALLENGER,
    CHAMPION,
    MODEL_VERSION_TAG,
    OOS_PREDICTIONS_ARTIFACT,
    PARENT_RUN_TAG,
    SEED_TAG,
    SEEDS_TAG,
    configure_tracking,
    ensure_experiment,
    load_out_of_sample_predictions,
    registered_model_name,
    run_tags,
    run_url,
    share_runs_view,
    version_with_alias,
)

CONFIG_ARTIFACT = "config.json"


@dataclass(frozen=True)
class Evaluation:
    """Out-of-sample results of a walk-forward: predictions (fold, date, symbol, prediction, target) and
    metrics per fold and over all test dates."""

    folds: tuple[Fold, ...]
    predictions: pd.DataFrame
    fold_metrics: tuple[dict[str, float], ...]
    metrics: dict[str, float]

    @property
    def window(self) -> DateWindow:
        return DateWindow(self.folds[0].test.min().date(), self.folds[-1].test.max().date())


@dataclass(frozen=True)
class TrainingResult:
    family: str
    run_id: str
    run_url: str
    experiment_id: str
    model_name: str
    model_version: str
    model_uri: str
    metrics: dict[str, float]
    fold_metrics: tuple[dict[str, float], ...]
    evaluation_window: DateWindow
    dataset_fingerprint: str
    promotion: PromotionDecision
    # The seeds the registered model is the ensemble of (Prophet's one seed).
    seeds: tuple[int, ...]
    # The registered model as fitted, when it was trained in this process.
    model: Model | None = None


CONFIG_TYPES: dict[str, type[XGBoostConfig] | type[LSTMConfig] | type[ProphetConfig]] = {
    XGBoostModel.family: XGBoostConfig,
    LSTMModel.family: LSTMConfig,
    ProphetModel.family: ProphetConfig,
}


def make_model(config: ModelConfig, seeds: Sequence[int] = ()) -> Model:
    """A model of `config`; with `seeds`, the ensemble of one such model per seed."""
    if seeds:
        members = {seed: _seed_model(replace(config, seed=seed)) for seed in seeds}
        return SeedEnsemble(members)
    if isinstance(config, ProphetConfig):
        return ProphetModel(config)
    return _seed_model(config)


def _seed_model(config: ModelConfig) -> XGBoostModel | LSTMModel:
    if isinstance(config, XGBoostConfig):
        return XGBoostModel(config)
    if isinstance(config, LSTMConfig):
        return LSTMModel(config)
    raise ValueError(f"{family_of(config)} is not a stochastic family: its models have no seeds' ensemble")


def family_of(config: ModelConfig) -> str:
    return next(family for family, config_type in CONFIG_TYPES.items() if isinstance(config, config_type))


def seeds_of(config: ModelConfig, seeds: Sequence[int]) -> tuple[int, ...]:
    """The seeds a family trains with: `seeds` for a stochastic family, its config's own for the others."""
    return tuple(seeds) if family_of(config) in STOCHASTIC_FAMILIES else (config.seed,)


def walk_forward(
    dataset: Dataset,
    config: ModelConfig,
    walk_forward_config: WalkForwardConfig,
    *,
    seeds: Sequence[int] = (),
) -> Evaluation:
    """Fit a fresh model per fold on its training dates (the seeds' ensemble with `seeds`) and score its
    test dates."""
    folds = tuple(walk_forward_splits(dataset.labelled_dates, walk_forward_config, dataset.horizon))
    predictions, forecast_metrics = [], []
    for fold in folds:
        model = make_model(config, seeds)
        model.fit(dataset, fold.train, fold.validation)
        predictions.append(_scored(dataset, model, fold.test).assign(fold=fold.index))
        forecast_metrics.append(model.forecast_metrics(dataset))
    return _evaluation(folds, predictions, forecast_metrics, dataset.horizon)


def ensemble_evaluation(
    dataset: Dataset, walk_forward_config: WalkForwardConfig, per_seed: Sequence[pd.DataFrame]
) -> Evaluation:
    """The seeds' ensemble's walk-forward from each seed's out-of-sample predictions (fold, date, symbol,
    prediction, target, as `walk_forward` makes them): the predictions ensembled date by date, scored as
    one model's."""
    folds = tuple(walk_forward_splits(dataset.labelled_dates, walk_forward_config, dataset.horizon))
    known = per_seed[0].loc[:, ["date", "symbol", "target", "fold"]]
    ensembled = rank_ensemble(per_seed).merge(known, on=["date", "symbol"], how="left")
    predictions = [ensembled.loc[ensembled["fold"] == fold.index] for fold in folds]
    return _evaluation(folds, predictions, [{} for _ in folds], dataset.horizon)


def _evaluation(
    folds: tuple[Fold, ...],
    predictions: Sequence[pd.DataFrame],
    forecast_metrics: Sequence[dict[str, float]],
    horizon: int,
) -> Evaluation:
    """Each fold's test predictions scored, and all of them together."""
    fold_metrics = tuple(
        cross_sectional_metrics(scored, horizon) | forecast
        for scored, forecast in zip(predictions, forecast_metrics, strict=True)
    )
    everything = pd.concat(predictions, ignore_index=True)
    metrics = cross_sectional_metrics(everything, horizon)
    # Forecast accuracy is measured per fold, over the forecast days after each fold's cutoff.
    metrics |= {
        name: float(pd.Series([fold[name] for fold in fold_metrics]).mean())
        for name in FORECAST_METRICS
        if name in fold_metrics[0]
    }
    return Evaluation(folds, everything, fold_metrics, metrics)


def _scored(dataset: Dataset, model: Model, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """The model's predictions on `dates` beside the target: date, symbol, target, prediction."""
    scores = model.predict(dataset, dates)
    return (
        dataset.frame.loc[scores.index, ["date", "symbol", TARGET]]
        .rename(columns={TARGET: "target"})
        .assign(prediction=scores)
    )


def fit_final(dataset: Dataset, config: ModelConfig, walk_forward_config: WalkForwardConfig) -> Model:
    """The model to register: fitted on every labelled date, with the last ones as validation."""
    split = final_split(dataset.labelled_dates, walk_forward_config, dataset.horizon)
    # The newest dates have prices and features but no target yet: price models fit on them too, the
    # others leave rows without a target out.
    unlabelled = dataset.dates[dataset.dates > split.validation.max()]
    model = make_model(config)
    model.fit(dataset, split.train, split.validation.union(unlabelled))
    return model


def train(
    dataset: Dataset,
    config: ModelConfig,
    *,
    tracking: TrackingConfig,
    walk_forward_config: WalkForwardConfig | None = None,
    rule: PromotionRule | None = None,
    seeds: Sequence[int] | None = None,
    dagster_run_id: str | None = None,
) -> TrainingResult:
    """Train each seed (`seeds`, default the config's own) one after the other, then register their
    ensemble and decide its promotion: what Dagster runs as separate steps, in one process."""
    walk_forward_config = walk_forward_config or WalkForwardConfig()
    family_seeds = seeds_of(config, seeds or (config.seed,))
    trained = [
        train_seed(
            dataset,
            config,
            seed=seed,
            tracking=tracking,
            walk_forward_config=walk_forward_config,
            dagster_run_id=dagster_run_id,
        )
        for seed in family_seeds
    ]
    result = register_training(
        dataset,
        [seed_run for seed_run, _ in trained],
        tracking=tracking,
        walk_forward_config=walk_forward_config,
        rule=rule,
        dagster_run_id=dagster_run_id,
    )
    if family_of(config) not in STOCHASTIC_FAMILIES:
        return replace(result, model=trained[0][1])
    ensemble = SeedEnsemble(
        {seed_run.seed: model for seed_run, model in trained if isinstance(model, XGBoostModel | LSTMModel)}
    )
    return replace(result, model=ensemble)


def train_seed(
    dataset: Dataset,
    config: ModelConfig,
    *,
    seed: int,
    tracking: TrackingConfig,
    walk_forward_config: WalkForwardConfig,
    dagster_run_id: str | None = None,
) -> tuple[SeedRun, Model]:
    """Evaluate walk-forward and fit the final model with `seed`, logged (model included, unregistered) as
    a run of the family's experiment."""
    config = replace(config, seed=seed)
    family = family_of(config)
    client = configure_tracking(tracking)
    experiment_id = ensure_experiment(client, family, tracking)

    evaluation = walk_forward(dataset, config, walk_forward_config)
    final = fit_final(dataset, config, walk_forward_config)
    tags = run_tags(
        family=family, dataset=dataset, evaluation_window=evaluation.window, dagster_run_id=dagster_run_id
    ) | {SEED_TAG: str(seed)}
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=f"{family} seed {seed} {dataset.window}", tags=tags
    ) as run:
        mlflow.log_params(_params(config, walk_forward_config, dataset))
        _log_metrics(evaluation)
        _log_artifacts(dataset, config, walk_forward_config, evaluation, final)
        info = final.log_model(dataset, registered_model_name=None)
    seed_run = SeedRun(
        family=family,
        seed=seed,
        run_id=run.info.run_id,
        model_id=info.model_id,
        metrics=evaluation.metrics,
        fold_metrics=evaluation.fold_metrics,
        evaluation_window=evaluation.window,
    )
    return seed_run, final


def register_training(
    dataset: Dataset,
    seed_runs: Sequence[SeedRun],
    *,
    tracking: TrackingConfig,
    walk_forward_config: WalkForwardConfig | None = None,
    rule: PromotionRule | None = None,
    dagster_run_id: str | None = None,
) -> TrainingResult:
    """The family's run over its seeds' runs, its model registered as a new version with the alias
    `challenger`, and the promotion decision. A stochastic family's run is its seeds' ensemble (model,
    walk-forward metrics and artifacts); Prophet's takes its one seed's run as it is."""
    walk_forward_config = walk_forward_config or WalkForwardConfig()
    rule = rule or PromotionRule()
    if not seed_runs:
        raise ValueError("no seed was trained")
    first = seed_runs[0]
    family = first.family
    if any(seed_run.family != family for seed_run in seed_runs):
        raise ValueError("the seeds' runs are of several families")
    if any(seed_run.evaluation_window != first.evaluation_window for seed_run in seed_runs):
        raise ValueError("the seeds were evaluated on different windows: train them on one dataset")
    stochastic = family in STOCHASTIC_FAMILIES
    if not stochastic and len(seed_runs) > 1:
        raise ValueError(f"{family} is deterministic: it trains one seed, not {len(seed_runs)}")
    client = configure_tracking(tracking)
    experiment_id = ensure_experiment(client, family, tracking)
    share_runs_view(client, experiment_id, rule.metric)
    model_name = registered_model_name(family)
    seeds = tuple(seed_run.seed for seed_run in seed_runs)
    tags = run_tags(
        family=family,
        dataset=dataset,
        evaluation_window=first.evaluation_window,
        dagster_run_id=dagster_run_id,
    ) | {SEEDS_TAG: ",".join(map(str, seeds))}

    with mlflow.start_run(
        experiment_id=experiment_id, run_name=f"{family} {dataset.window}", tags=tags
    ) as run:
        for seed_run in seed_runs:
            client.set_tag(seed_run.run_id, PARENT_RUN_TAG, run.info.run_id)
        if stochastic:
            metrics, fold_metrics, model_id = _log_ensemble(dataset, seed_runs, walk_forward_config)
        else:
            metrics, fold_metrics, model_id = _log_copy(client, first)
        version = _register(client, model_name, model_id, run.info.run_id)
        mlflow.set_tag(MODEL_VERSION_TAG, version)
        client.set_registered_model_alias(model_name, CHALLENGER, version)
        decision = _promotion(
            client,
            model_name,
            version,
            rule,
            dataset,
            str(first.evaluation_window),
            metrics,
            walk_forward_config,
            family,
        )
        if decision.promoted:
            client.set_registered_model_alias(model_name, CHAMPION, version)
        _log_decision(client, model_name, version, decision)

    return TrainingResult(
        family=family,
        run_id=run.info.run_id,
        run_url=run_url(tracking, experiment_id, run.info.run_id),
        experiment_id=experiment_id,
        model_name=model_name,
        model_version=version,
        model_uri=f"models:/{model_name}/{version}",
        metrics=metrics,
        fold_metrics=fold_metrics,
        evaluation_window=first.evaluation_window,
        dataset_fingerprint=dataset.fingerprint,
        promotion=decision,
        seeds=seeds,
    )


# What a family's run logged: its metrics, fold metrics and the id of its logged model.
_RunContent = tuple[dict[str, float], tuple[dict[str, float], ...], str]


def _log_ensemble(
    dataset: Dataset, seed_runs: Sequence[SeedRun], walk_forward_config: WalkForwardConfig
) -> _RunContent:
    """Log the seeds' ensemble to the active run: params, walk-forward metrics and artifacts from the seeds'
    out-of-sample predictions, and the model made of the seeds' logged models."""
    seeds = [seed_run.seed for seed_run in seed_runs]
    config = model_config_from_document(
        mlflow.artifacts.load_dict(f"runs:/{seed_runs[0].run_id}/{CONFIG_ARTIFACT}")
    )
    evaluation = ensemble_evaluation(
        dataset,
        walk_forward_config,
        [load_out_of_sample_predictions(seed_run.run_id) for seed_run in seed_runs],
    )
    member_type = type(_seed_model(config))
    ensemble = SeedEnsemble({seed_run.seed: member_type.load(seed_run.model_uri) for seed_run in seed_runs})
    mlflow.log_params(_params(config, walk_forward_config, dataset, seeds))
    _log_metrics(evaluation)
    _log_artifacts(dataset, config, walk_forward_config, evaluation, ensemble, seeds)
    info = ensemble.log_model(dataset, registered_model_name=None)
    return evaluation.metrics, evaluation.fold_metrics, info.model_id


def _log_copy(client: MlflowClient, seed_run: SeedRun) -> _RunContent:
    """Log the seed's run to the active run as it is (params, metrics, artifacts); its model is the run's."""
    logged = client.get_run(seed_run.run_id)
    mlflow.log_params(logged.data.params | {"training.seeds": str(seed_run.seed)})
    mlflow.log_metrics(logged.data.metrics)
    with tempfile.TemporaryDirectory() as scratch:
        mlflow.log_artifacts(mlflow.artifacts.download_artifacts(run_id=seed_run.run_id, dst_path=scratch))
    return seed_run.metrics, seed_run.fold_metrics, seed_run.model_id


def _register(client: MlflowClient, model_name: str, model_id: str, run_id: str) -> str:
    """A new version of `model_name` from the logged model `model_id`, attributed to the family's run
    `run_id`: it holds the out-of-sample predictions and config the products and the next promotion read."""
    try:
        client.create_registered_model(model_name)
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    version = client.create_model_version(
        model_name, source=f"models:/{model_id}", run_id=run_id, model_id=model_id
    )
    return str(version.version)


def train_xgboost(
    dataset: Dataset,
    config: XGBoostConfig | None = None,
    *,
    tracking: TrackingConfig,
    walk_forward_config: WalkForwardConfig | None = None,
    rule: PromotionRule | None = None,
    seeds: Sequence[int] | None = None,
    dagster_run_id: str | None = None,
) -> TrainingResult:
    return train(
        dataset,
        config or XGBoostConfig(),
        tracking=tracking,
        walk_forward_config=walk_forward_config,
        rule=rule,
        seeds=seeds,
        dagster_run_id=dagster_run_id,
    )


def train_lstm(
    dataset: Dataset,
    config: LSTMConfig | None = None,
    *,
    tracking: TrackingConfig,
    walk_forward_config: WalkForwardConfig | None = None,
    rule: PromotionRule | None = None,
    seeds: Sequence[int] | None = None,
    dagster_run_id: str | None = None,
) -> TrainingResult:
    return train(
        dataset,
        config or LSTMConfig(),
        tracking=tracking,
        walk_forward_config=walk_forward_config,
        rule=rule,
        seeds=seeds,
        dagster_run_id=dagster_run_id,
    )


def train_prophet(
    dataset: Dataset,
    config: ProphetConfig | None = None,
    *,
    tracking: TrackingConfig,
    walk_forward_config: WalkForwardConfig | None = None,
    rule: PromotionRule | None = None,
    dagster_run_id: str | None = None,
) -> TrainingResult:
    return train(
        dataset,
        config or ProphetConfig(),
        tracking=tracking,
        walk_forward_config=walk_forward_config,
        rule=rule,
        dagster_run_id=dagster_run_id,
    )


def config_document(
    config: ModelConfig,
    walk_forward_config: WalkForwardConfig,
    dataset: Dataset,
    seeds: Sequence[int] = (),
) -> dict[str, Any]:
    """What config.json holds; `seeds` when the run's model is the seeds' ensemble (the model's own seed
    does not count then)."""
    document = {
        "family": family_of(config),
        "model": asdict(config),
        "walk_forward": asdict(walk_forward_config),
        "dataset": asdict(dataset.config),
    }
    return document | {"seeds": list(seeds)} if seeds else document


def model_config_from_document(document: dict[str, Any]) -> ModelConfig:
    """The model config a run logged in config.json (fields it does not know are left out)."""
    config_type = CONFIG_TYPES[document["family"]]
    known = {field.name for field in fields(config_type)}
    return config_type(**{name: value for name, value in document["model"].items() if name in known})


def _params(
    config: ModelConfig, walk_forward_config: WalkForwardConfig, dataset: Dataset, seeds: Sequence[int] = ()
) -> dict[str, Any]:
    """The run's params: `model.seed` for one seed's model, `training.seeds` for the seeds' ensemble."""
    document = config_document(config, walk_forward_config, dataset)
    params = {
        f"{section}.{name}": value
        for section in ("model", "walk_forward", "dataset")
        for name, value in document[section].items()
        if not (seeds and section == "model" and name == "seed")
    }
    if seeds:
        params["training.seeds"] = ",".join(map(str, seeds))
    return params | {
        "dataset.rows": len(dataset.frame),
        "dataset.symbols": dataset.frame["symbol"].nunique(),
        "dataset.features": len(dataset.features),
        "dataset.window": str(dataset.window),
    }


def _log_artifacts(
    dataset: Dataset,
    config: ModelConfig,
    walk_forward_config: WalkForwardConfig,
    evaluation: Evaluation,
    final: Model,
    seeds: Sequence[int] = (),
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / CONFIG_ARTIFACT).write_text(
            json.dumps(config_document(config, walk_forward_config, dataset, seeds), indent=2)
        )
        (folder / "features.json").write_text(json.dumps(list(dataset.features), indent=2))
        importance = final.feature_importance(dataset).rename("importance")
        importance.sort_values(ascending=False).to_csv(
            folder / "feature_importance.csv", index_label="feature"
        )
        save_feature_importance(importance, folder / "feature_importance.png")
        save_ic_plot(
            daily_ic(evaluation.predictions, rank=True),
            [fold.test.min() for fold in evaluation.folds],
            folder / "ic_timeseries.png",
        )
        save_equity_curve(
            long_short_returns(evaluation.predictions), dataset.horizon, folder / "long_short_equity.png"
        )
        pd.DataFrame(evaluation.fold_metrics).assign(fold=[f.index for f in evaluation.folds]).to_csv(
            folder / "fold_metrics.csv", index=False
        )
        evaluation.predictions.to_parquet(folder / OOS_PREDICTIONS_ARTIFACT, index=False)
        if isinstance(final, ProphetModel):
            final.forecasts.to_csv(folder / "forecasts.csv", index=False)
        mlflow.log_artifacts(str(folder))


def _promotion(
    client: MlflowClient,
    model_name: str,
    version: str,
    rule: PromotionRule,
    dataset: Dataset,
    window: str,
    metrics: dict[str, float],
    walk_forward_config: WalkForwardConfig,
    family: str,
) -> PromotionDecision:
    """Compare with the current champion on this run's evaluation window: its logged metric when its run
    was evaluated on the same window and data, else its config (and seeds, for an ensemble) evaluated again
    here walk-forward (the champion model itself was fitted on dates inside this window, so scoring it here
    would flatter it)."""
    challenger_value = metrics.get(rule.metric, math.nan)
    champion = version_with_alias(client, model_name, CHAMPION)
    if champion is None or champion.run_id is None:
        return decide(
            rule, evaluation_window=window, challenger_version=version, challenger_value=challenger_value
        )
    champion_run = client.get_run(champion.run_id)
    same_window = champion_run.data.tags.get("evaluation_window") == window
    same_data = champion_run.data.tags.get("dataset_fingerprint") == dataset.fingerprint
    if same_window and same_data:
        champion_value = champion_run.data.metrics.get(rule.metric, math.nan)
        source = "logged"
    else:
        document = mlflow.artifacts.load_dict(f"runs:/{champion.run_id}/{CONFIG_ARTIFACT}")
        champion_config = model_config_from_document(document)
        if family_of(champion_config) != family:
            raise ValueError(f"champion v{champion.version} of {model_name} is not a {family} model")
        champion_seeds = document.get("seeds", ())
        champion_value = walk_forward(
            dataset, champion_config, walk_forward_config, seeds=champion_seeds
        ).metrics.get(rule.metric, math.nan)
        source = "re-evaluated"
    return decide(
        rule,
        evaluation_window=window,
        challenger_version=version,
        challenger_value=challenger_value,
        champion_version=str(champion.version),
        champion_value=champion_value,
        champion_source=source,
    )


def _log_metrics(evaluation: Evaluation) -> None:
    """The walk-forward's metrics, overall under their plain names and each fold's as `fold_<k>/<name>`."""
    mlflow.log_metrics(evaluation.metrics)
    for fold, metrics in zip(evaluation.folds, evaluation.fold_metrics, strict=True):
        mlflow.log_metrics({f"fold_{fold.index}/{name}": value for name, value in metrics.items()})


def _log_decision(client: MlflowClient, model_name: str, version: str, decision: PromotionDecision) -> None:
    mlflow.log_params(
        {
            "promotion.metric": decision.rule.metric,
            "promotion.min_improvement": decision.rule.min_improvement,
            "promotion.higher_is_better": decision.rule.higher_is_better,
        }
    )
    tags = {"promotion.decision": decision.alias, "promotion.reason": decision.reason}
    mlflow.set_tags(tags)
    for key, value in tags.items():
        client.set_model_version_tag(model_name, version, key, value)
    mlflow.log_dict(decision.to_dict(), "promotion.json")
