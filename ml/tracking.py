"""MLflow wiring: the tracking store (a PostgreSQL database of its own, or a remote server), one experiment
per model family with its artifacts under a local folder, the tags every run carries, registry aliases and
the command line of the MLflow UI on the same store."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import mlflow
import mlflow.artifacts
import pandas as pd
import psycopg
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from psycopg import sql

from ml.config import TrackingConfig
from ml.datasets import Dataset, DateWindow
from stockyard.settings import PROJECT_ROOT

CHAMPION = "champion"
CHALLENGER = "challenger"
# MLflow's UI nests a run under the run this tag names: a family's seeds under the family's run.
PARENT_RUN_TAG = "mlflow.parentRunId"
# An experiment's type, the tag MLflow's UI sets when one picks it: model training, whose page is the runs
# table. MLflow 3.17's UI no longer reads it (its GenAI / Model training switch decides, a per-browser
# setting, GenAI first, which the `workflowType` parameter of a page's URL overrides): the project's links to
# the UI carry the parameter, and the tag stays for older UIs and for what lists experiments by type.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"
MODEL_TRAINING_PAGE = "workflowType=machine_learning"
# The runs table as the project shows it: a view the UI loads from the experiment tag
# `mlflow.sharedViewState.<key>` when a link names the key (`viewStateShareKey`), its only way to set a
# table's columns and order from outside the browser. The UI ignores the view when the link carries a sort
# or filter of its own.
RUNS_VIEW_KEY = "stockyard-runs"
SHARED_VIEW_TAG_PREFIX = "mlflow.sharedViewState."
# The tags of a family's run: the seeds its model is the ensemble of, and the version of the registered
# model it made; a seed's run has its seed.
SEEDS_TAG = "seeds"
SEED_TAG = "seed"
MODEL_VERSION_TAG = "model_version"
# The walk-forward's out-of-sample predictions, as ml.training logs them with every run.
OOS_PREDICTIONS_ARTIFACT = "oos_predictions.parquet"
# What the view shows beside the promotion metric: the metrics that say how sure and how tradable it is,
# the seeds, the version and its promotion decision.
_RUNS_VIEW_METRICS = ("rank_ic", "rank_ic_tstat", "long_short_sharpe")
_RUNS_VIEW_TAGS = (SEEDS_TAG, MODEL_VERSION_TAG, "promotion.decision")


def experiment_name(family: str) -> str:
    return f"stockyard-{family}"


def registered_model_name(family: str) -> str:
    return f"stockyard-{family}"


def ensure_tracking_database(tracking_uri: str) -> None:
    """Create the PostgreSQL database a database tracking URI names, if it does not exist yet (MLflow
    creates its tables in it, but not the database)."""
    if not tracking_uri.startswith(("postgresql://", "postgres://")):
        return
    name = str(psycopg.conninfo.conninfo_to_dict(tracking_uri)["dbname"])
    head, _, query = tracking_uri.partition("?")
    admin_url = head.rsplit("/", 1)[0] + "/postgres" + (f"?{query}" if query else "")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))


def configure_tracking(config: TrackingConfig) -> MlflowClient:
    """Point MLflow's tracking and registry at the configured store and return a client on it."""
    ensure_tracking_database(config.tracking_uri)
    mlflow.set_tracking_uri(config.tracking_uri)
    mlflow.set_registry_uri(config.tracking_uri)
    return MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.tracking_uri)


def ensure_experiment(client: MlflowClient, family: str, config: TrackingConfig) -> str:
    """The id of the family's experiment, created with its artifacts under `config.artifact_root`, typed as
    model training."""
    name = experiment_name(family)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        experiment_id = str(experiment.experiment_id)
        kind = experiment.tags.get(EXPERIMENT_KIND_TAG)
    else:
        location = None
        if config.artifact_root is not None:
            folder = config.artifact_root / name
            folder.mkdir(parents=True, exist_ok=True)
            location = folder.as_uri()
        experiment_id = str(client.create_experiment(name, artifact_location=location))
        kind = None
    if kind != MODEL_TRAINING_KIND:
        client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND)
    return experiment_id


def runs_view(promotion_metric: str) -> dict[str, Any]:
    """The runs table's view: the families' runs (not their seeds'), best first on the promotion metric.

    MLflow's table nests runs under their parent only when sorted by start time, so sorted on a metric it
    would list each family's run beside its seeds' runs: the view keeps to the runs with seeds.
    """
    metrics = [promotion_metric, *(name for name in _RUNS_VIEW_METRICS if name != promotion_metric)]
    return {
        "searchFilter": f"tags.{SEEDS_TAG} LIKE '%'",
        "orderByKey": f"metrics.`{promotion_metric}`",
        "orderByAsc": False,
        "selectedColumns": [
            *(f"metrics.`{name}`" for name in metrics),
            *(f"tags.`{name}`" for name in _RUNS_VIEW_TAGS),
        ],
    }


def share_runs_view(client: MlflowClient, experiment_id: str, promotion_metric: str) -> None:
    """Store the runs table's view on the experiment, where `runs_url` links to it."""
    view = json.dumps(runs_view(promotion_metric), separators=(",", ":"))
    client.set_experiment_tag(experiment_id, SHARED_VIEW_TAG_PREFIX + RUNS_VIEW_KEY, view)


def runs_url(config: TrackingConfig, experiment_id: str) -> str:
    """The UI's table of an experiment's runs in the view `share_runs_view` stored."""
    view = f"viewStateShareKey={RUNS_VIEW_KEY}"
    return f"{config.ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs?{MODEL_TRAINING_PAGE}&{view}"


def family_runs_urls(client: MlflowClient, config: TrackingConfig) -> dict[str, str]:
    """The runs table (`runs_url`) of each experiment in the store that has the view, by experiment name."""
    view_tag = SHARED_VIEW_TAG_PREFIX + RUNS_VIEW_KEY
    experiments = client.search_experiments(filter_string=f"tags.`{view_tag}` LIKE '%'")
    return {
        experiment.name: runs_url(config, str(experiment.experiment_id))
        for experiment in sorted(experiments, key=lambda experiment: experiment.name)
    }


def run_tags(
    *, family: str, dataset: Dataset, evaluation_window: DateWindow, dagster_run_id: str | None
) -> dict[str, str]:
    tags = {
        "family": family,
        "git_commit": git_commit(),
        "data_window": str(dataset.window),
        "dataset_fingerprint": dataset.fingerprint,
        "evaluation_window": str(evaluation_window),
        "synthetic": str(dataset.synthetic).lower(),
    }
    if dagster_run_id:
        tags["dagster_run_id"] = dagster_run_id
    return tags


def git_commit() -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def run_url(config: TrackingConfig, experiment_id: str, run_id: str) -> str:
    return f"{config.ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}?{MODEL_TRAINING_PAGE}"


def version_with_alias(client: MlflowClient, model_name: str, alias: str) -> ModelVersion | None:
    """The version of a registered model that carries `alias`, if the model and the alias exist."""
    try:
        version = client.get_registered_model(model_name).aliases.get(alias)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    return None if version is None else client.get_model_version(model_name, str(version))


def load_out_of_sample_predictions(run_id: str) -> pd.DataFrame:
    """A training run's walk-forward predictions (MLflow tracking must be configured)."""
    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=OOS_PREDICTIONS_ARTIFACT)
    return pd.read_parquet(path)


def ui_command(config: TrackingConfig, *, host: str = "127.0.0.1", port: int = 5000) -> list[str]:
    """The `mlflow server` command line (what `mlflow ui` runs) that shows the runs and models of the
    configured store, reading artifacts from the same local folder the runs wrote them to."""
    if config.is_remote:
        raise ValueError(f"the tracking server at {config.tracking_uri} already serves the UI: open it")
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        config.tracking_uri,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    if config.artifact_root is not None:
        command += ["--default-artifact-root", config.artifact_root.as_uri()]
    return command
