"""Machine learning: the training dataset, one model per family trained walk-forward and tracked in MLflow,
the families side by side, and the promotion gate.

    fct_stock_features, fct_forward_returns, fct_daily_prices -> training_dataset
        -> xgboost_model, lstm_model, prophet_model -> model_evaluation -> model_promotion

The assets are thin over `ml`, whose training stack (torch, XGBoost, Prophet, MLflow) takes seconds to
import: it is imported when a training asset runs, so loading the definitions stays fast.

Each model asset is a graph: one step per seed (the configured seeds for XGBoost and the LSTM, one for
Prophet), which depend on the dataset only, so an executor with workers trains them at once, then a step
that registers the seeds' ensemble (ml.training.register_training) and yields the asset.

training_dataset passes on a reference to the dataset (window, config, fingerprint), not its rows: each model
asset reads the rows again from the marts and refuses them if the fingerprint moved. No frame is pickled
between processes, and a process holds one copy at most.

ml.training decides promotion as it registers each model: the new version gets the alias `challenger`, and
`champion` only when it beats the champion by the rule's margin. model_promotion publishes the champions;
its check per family fails when that family's challenger failed the rule. The check does not block: the
champion alias stays where it was, so the products downstream are made with the champion that was kept.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pandas as pd
from dagster._core.storage.asset_check_execution_record import (
    COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES,
)

from ml.config import STOCHASTIC_FAMILIES, MLSettings, ModelConfig
from ml.datasets import Dataset, DatasetReference, StaleDatasetError, load_dataset
from ml.evaluation import Comparison, ModelSummary, SeedRun
from ml.promotion import PromotionRule
from ml.splits import walk_forward_splits
from orchestration.quality.checks import FEATURE_CHECK
from orchestration.resources import MLflowResource, WarehouseResource
from stockyard.quality.results import markdown_table

ML_GROUP = "ml"
TRAINING_DATASET = dg.AssetKey("training_dataset")
MODEL_EVALUATION = dg.AssetKey("model_evaluation")
MODEL_PROMOTION = dg.AssetKey("model_promotion")
# Steps with this tag (each seed's training, and the registration, which may evaluate the champion again) run
# one at a time under the multiprocess executor unless its settings say more: each training uses every core,
# and memory holds one training's data.
TRAINING_TAG = "stockyard/training"


def promotion_check_name(family: str) -> str:
    return f"{family}_beats_champion"


@dataclass(frozen=True)
class Family:
    name: str
    # Dagster kind shown on the asset.
    kind: str
    description: str
    config: Callable[[MLSettings], ModelConfig]

    @property
    def key(self) -> dg.AssetKey:
        return dg.AssetKey(f"{self.name}_model")


FAMILIES = (
    Family(
        "xgboost",
        "xgboost",
        "XGBoost cross-sectional model of the forward excess return (histogram method, early stopping).",
        MLSettings.xgboost,
    ),
    Family(
        "lstm",
        "pytorch",
        "PyTorch LSTM over each symbol's last days of features, predicting the same target as XGBoost.",
        MLSettings.lstm,
    ),
    Family(
        "prophet",
        "prophet",
        "Prophet price forecasts per symbol with intervals, scored as a forecast return over the horizon.",
        MLSettings.prophet,
    ),
)
TRAINING_NOTE = (
    " Trained walk-forward on training_dataset, logged to MLflow (run URL and metrics here) and registered "
    "as a new version with the alias `challenger`, `champion` too when it beats the champion by the rule."
)


def build_ml_assets(
    ml: MLSettings, *, features: dg.AssetKey, forward_returns: dg.AssetKey, prices: dg.AssetKey
) -> list[dg.AssetsDefinition]:
    """The ML assets over the marts behind `features`, `forward_returns` and `prices`, sized by `ml`."""
    return [
        _training_dataset(ml, features=features, marts=[features, forward_returns, prices]),
        *(_model(family, ml) for family in FAMILIES),
        model_evaluation,
        model_promotion,
    ]


def _training_dataset(
    ml: MLSettings, *, features: dg.AssetKey, marts: Sequence[dg.AssetKey]
) -> dg.AssetsDefinition:
    @dg.asset(
        key=TRAINING_DATASET,
        group_name=ML_GROUP,
        deps=marts,
        kinds={"python", "postgres"},
        description="The features of every date with the forward excess return as the target, normalized "
        "across each date's symbols and fingerprinted. Refuses features whose blocking quality check failed.",
    )
    def training_dataset(
        context: dg.AssetExecutionContext, warehouse_db: WarehouseResource
    ) -> dg.Output[DatasetReference]:
        _refuse_failed_features(context.instance, dg.AssetCheckKey(features, FEATURE_CHECK))
        with warehouse_db.connect() as conn:
            dataset = load_dataset(conn, config=ml.dataset())
        try:
            folds = walk_forward_splits(dataset.labelled_dates, ml.walk_forward(), dataset.horizon)
        except ValueError as error:
            raise dg.Failure(
                description=f"{error}. STOCKYARD_ML_FOLDS, _TEST_DAYS, _VALIDATION_DAYS and _MIN_TRAIN_DAYS "
                "size the walk-forward."
            ) from error
        frame = dataset.frame
        return dg.Output(
            DatasetReference.of(dataset),
            metadata={
                "dagster/row_count": len(frame),
                "symbols": int(frame["symbol"].nunique()),
                "features": len(dataset.features),
                "window": str(dataset.window),
                "labelled_dates": len(dataset.labelled_dates),
                "evaluation_window": f"{folds[0].test.min().date()}..{folds[-1].test.max().date()}",
                "horizon_days": dataset.horizon,
                "fingerprint": dataset.fingerprint,
                "synthetic": dataset.synthetic,
            },
        )

    return training_dataset


def _refuse_failed_features(instance: dg.DagsterInstance, check: dg.AssetCheckKey) -> None:
    """Fail when the features' blocking check failed in its latest evaluation.

    Within a run Dagster itself keeps a failed blocking check's downstream from running, but the retrain job
    trains on the marts as an earlier run (the daily refresh) left them, without running the check.
    """
    records = instance.event_log_storage.get_asset_check_execution_history(
        check, limit=1, status=set(COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES)
    )
    evaluation = records[0].event.asset_check_evaluation if records and records[0].event else None
    if (
        evaluation is not None
        and not evaluation.passed
        and evaluation.severity is dg.AssetCheckSeverity.ERROR
    ):
        raise dg.Failure(
            description=f"The blocking check {check.to_user_string()} failed in run {records[0].run_id}: "
            "fix the features and materialize them again before training on them.",
            metadata={"failed_check_run": records[0].run_id},
        )


def family_seeds(family: Family, ml: MLSettings) -> tuple[int, ...]:
    """The seeds `family` trains with: the configured seeds for a stochastic family, one for the others."""
    return ml.seeds if family.name in STOCHASTIC_FAMILIES else (family.config(ml).seed,)


def _model(family: Family, ml: MLSettings) -> dg.AssetsDefinition:
    """The family's model as a graph: a step per seed, each training on its own (in parallel where the
    executor has workers), then a step that registers the seeds' ensemble and decides its promotion."""
    train_seeds = [_train_seed_op(family, ml, seed) for seed in family_seeds(family, ml)]
    register = _register_op(family, ml)

    @dg.graph_asset(
        name=family.key.path[-1],
        group_name=ML_GROUP,
        ins={"reference": dg.AssetIn(TRAINING_DATASET)},
        kinds={"python", "mlflow", family.kind},
        description=family.description + TRAINING_NOTE,
    )
    def model(reference: DatasetReference) -> Any:  # the register step's output, a ModelSummary
        return register(reference, [train_seed(reference) for train_seed in train_seeds])

    return model


def _train_seed_op(family: Family, ml: MLSettings, seed: int) -> dg.OpDefinition:
    @dg.op(
        name=f"{family.name}_seed_{seed}",
        tags={TRAINING_TAG: family.name},
        description=f"{family.name} trained with seed {seed}, logged as an MLflow run of its own.",
    )
    def train_seed(
        context: dg.OpExecutionContext,
        reference: DatasetReference,
        warehouse_db: WarehouseResource,
        mlflow_tracking: MLflowResource,
    ) -> SeedRun:
        from ml.training import train_seed

        seed_run, _ = train_seed(
            _load(reference, warehouse_db),
            family.config(ml),
            seed=seed,
            tracking=mlflow_tracking.tracking(),
            walk_forward_config=ml.walk_forward(),
            dagster_run_id=context.run_id,
        )
        context.log.info(
            "%s seed %s: walk-forward %s %s, run %s",
            family.name,
            seed,
            ml.promotion_metric,
            seed_run.metrics.get(ml.promotion_metric),
            seed_run.run_id,
        )
        return seed_run

    return train_seed


def _register_op(family: Family, ml: MLSettings) -> dg.OpDefinition:
    @dg.op(
        name=f"register_{family.name}",
        # Deciding promotion may evaluate the champion's config walk-forward again: a training.
        tags={TRAINING_TAG: family.name},
        description=f"The {family.name} seeds' ensemble (the mean of their per-date ranks), registered as "
        "the family's run over the seeds' runs, and its promotion decided.",
    )
    def register(
        context: dg.OpExecutionContext,
        reference: DatasetReference,
        seed_runs: list[SeedRun],
        warehouse_db: WarehouseResource,
        mlflow_tracking: MLflowResource,
    ) -> dg.Output[ModelSummary]:
        from ml.training import register_training

        result = register_training(
            _load(reference, warehouse_db),
            seed_runs,
            tracking=mlflow_tracking.tracking(),
            walk_forward_config=ml.walk_forward(),
            rule=PromotionRule.from_settings(ml),
            dagster_run_id=context.run_id,
        )
        summary = ModelSummary.of(result)
        context.log.info(
            "%s v%s (%s), seeds %s: %s",
            summary.model_name,
            summary.model_version,
            summary.promotion.alias,
            ", ".join(map(str, result.seeds)),
            summary.run_url,
        )
        metadata = _model_metadata(summary) | {"seeds": list(result.seeds)}
        return dg.Output(summary, metadata=metadata)

    return register


def _load(reference: DatasetReference, warehouse_db: WarehouseResource) -> Dataset:
    with warehouse_db.connect() as conn:
        try:
            return reference.load(conn)
        except StaleDatasetError as error:
            raise dg.Failure(description=f"{error}: materialize training_dataset again.") from error


def _model_metadata(summary: ModelSummary) -> "dict[str, dg.RawMetadataValue]":
    folds = pd.DataFrame(summary.fold_metrics).rename_axis("fold").reset_index()
    return {
        "mlflow_run": dg.MetadataValue.url(summary.run_url),
        "run_id": summary.run_id,
        "model": f"{summary.model_name} v{summary.model_version}",
        "model_uri": summary.model_uri,
        "promotion": summary.promotion.alias,
        "promotion_reason": summary.promotion.reason,
        "evaluation_window": summary.evaluation_window,
        "dataset_fingerprint": summary.dataset_fingerprint,
        "fold_metrics": dg.MetadataValue.md(markdown_table(folds)),
        **{name: dg.MetadataValue.float(value) for name, value in summary.metrics.items()},
    }


@dg.asset(
    key=MODEL_EVALUATION,
    group_name=ML_GROUP,
    ins={family.name: dg.AssetIn(family.key) for family in FAMILIES},
    kinds={"python"},
    description="The families side by side: every metric of each on the same walk-forward evaluation "
    "window, with links to their MLflow runs.",
)
def model_evaluation(
    context: dg.AssetExecutionContext, xgboost: ModelSummary, lstm: ModelSummary, prophet: ModelSummary
) -> dg.Output[Comparison]:
    comparison = Comparison((xgboost, lstm, prophet))
    if not comparison.comparable:
        context.log.warning(
            "The families were evaluated on different windows or data: materialize them from one "
            "training_dataset to compare them."
        )
    best = comparison.best("rank_ic")
    return dg.Output(
        comparison,
        metadata={
            "comparison": dg.MetadataValue.md(comparison.table()),
            "comparable": comparison.comparable,
            "best_rank_ic": best.family if best else "none",
            **{
                f"{summary.family}_rank_ic": dg.MetadataValue.float(
                    summary.metrics.get("rank_ic", float("nan"))
                )
                for summary in comparison.summaries
            },
        },
    )


@dg.asset(
    key=MODEL_PROMOTION,
    group_name=ML_GROUP,
    ins={"comparison": dg.AssetIn(MODEL_EVALUATION)},
    kinds={"python", "mlflow"},
    check_specs=[
        dg.AssetCheckSpec(
            promotion_check_name(family.name),
            asset=MODEL_PROMOTION,
            description=f"The {family.name} challenger of this run passed the promotion rule (or there was "
            "no champion yet). A warning when it did not: the champion alias stays and the products are made "
            "with the champion that was kept. An error when the family has no champion at all: its products "
            "fail until a version is promoted.",
        )
        for family in FAMILIES
    ],
    description="The champion of each family (registry alias `champion`) after this run's decisions, as "
    "pinned model URIs for what scores with them. A challenger that did not beat its champion fails its "
    "check without blocking: the products downstream are made with the champion that was kept.",
)
def model_promotion(
    comparison: Comparison, mlflow_tracking: MLflowResource
) -> Iterator[dg.Output[dict[str, str]] | dg.AssetCheckResult]:
    from ml.tracking import CHAMPION, version_with_alias

    client = mlflow_tracking.client()
    champions: dict[str, str] = {}
    champion_versions: dict[str, str | None] = {}
    rows = []
    for summary in comparison.summaries:
        champion = version_with_alias(client, summary.model_name, CHAMPION)
        champion_versions[summary.family] = str(champion.version) if champion else None
        if champion is not None:
            champions[summary.family] = f"models:/{summary.model_name}/{champion.version}"
        rows.append(
            {
                "family": summary.family,
                "trained": f"v{summary.model_version}",
                "decision": summary.promotion.alias,
                "champion": f"v{champion.version}" if champion else "none",
                "reason": summary.promotion.reason,
            }
        )
    yield dg.Output(
        champions,
        metadata={
            "champions": dg.MetadataValue.json(champions),
            "decisions": dg.MetadataValue.md(markdown_table(pd.DataFrame(rows))),
        },
    )
    for summary in comparison.summaries:
        yield _promotion_check(summary, champion_versions[summary.family])


def _promotion_check(summary: ModelSummary, champion: str | None) -> dg.AssetCheckResult:
    """The gate's decision for one family, given the version that holds the champion alias now.

    A challenger that did not beat the champion is a decision the gate exists to make, not a defect in the
    data: the check fails with WARN severity (shown as a warning in the Dagster UI, where ERROR reads as
    something to fix) and does not block, so the products are made with `champion`. Only a family with no
    champion at all is an ERROR: nothing can score with it, and its products fail saying so.
    """
    decision = summary.promotion
    values = {
        "challenger_value": decision.challenger_value,
        "champion_value": decision.champion_value,
    }
    outcome = "promoted to champion" if decision.promoted else "stays challenger"
    description = f"{summary.model_name} v{summary.model_version} {outcome}: {decision.reason}"
    if champion is None:
        description += (
            f". {summary.model_name} has no champion: its products fail until a version is promoted"
        )
    elif not decision.promoted:
        description += f". The products are made with champion v{champion}"
    return dg.AssetCheckResult(
        check_name=promotion_check_name(summary.family),
        passed=decision.promoted and champion is not None,
        severity=dg.AssetCheckSeverity.WARN if champion is not None else dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata={
            "mlflow_run": dg.MetadataValue.url(summary.run_url),
            "decision": decision.alias,
            "metric": decision.rule.metric,
            "min_improvement": decision.rule.min_improvement,
            "evaluation_window": decision.evaluation_window,
            "challenger_version": decision.challenger_version,
            "champion_version": decision.champion_version or "none",
            # Who holds the alias now, what the products are made with.
            "champion_after": champion or "none",
            **{name: dg.MetadataValue.float(value) for name, value in values.items() if value is not None},
        },
    )
