"""MLflow wiring: the tracking store (a PostgreSQL database of its own, or a remote server), one experiment
per model family with its artifacts under a local folder, the tags every run carries, registry aliases and
the command line of the MLflow UI on the same store."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import mlflow
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
# The experiment tag MLflow's UI reads for an experiment's type: typed as model training, an experiment opens
# on its runs table (untyped, MLflow 3 opens it on the generative-AI overview of traces).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"
# A view of the runs table saved on the experiment, as the UI's "Save as new view" saves one: an experiment
# tag `mlflow.sharedViewState.<key>`, opened by the experiment's URL with `?viewStateShareKey=<key>`. The UI
# has no setting for its default columns (Source, Models, Dataset), so the promotion metric's columns come
# with this view.
PROMOTION_VIEW_KEY = "promotion"
VIEW_TAG_PREFIX = "mlflow.sharedViewState."


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


def ensure_experiment(
    client: MlflowClient, family: str, config: TrackingConfig, *, promotion_metric: str = "rank_ic"
) -> str:
    """The id of the family's experiment, created with its artifacts under `config.artifact_root`, typed as
    model training and with a saved view of its runs on `promotion_metric`."""
    name = experiment_name(family)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        experiment_id = str(experiment.experiment_id)
        tags = experiment.tags
    else:
        location = None
        if config.artifact_root is not None:
            folder = config.artifact_root / name
            folder.mkdir(parents=True, exist_ok=True)
            location = folder.as_uri()
        experiment_id = str(client.create_experiment(name, artifact_location=location))
        tags = {}
    if tags.get(EXPERIMENT_KIND_TAG) != MODEL_TRAINING_KIND:
        client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND)
    view_tag = VIEW_TAG_PREFIX + PROMOTION_VIEW_KEY
    view = promotion_view(promotion_metric)
    # The view records when it was saved: one that shows the same is left as it is.
    if _view_content(tags.get(view_tag)) != _view_content(view):
        client.set_experiment_tag(experiment_id, view_tag, view)
    return experiment_id


def promotion_view(metric: str) -> str:
    """The saved view of a family's runs: the promotion metric and what to read beside it as columns,
    best first."""
    columns = [
        "attributes.`Models`",
        f"metrics.`{metric}`",
        "metrics.`rank_ic_tstat`",
        "metrics.`long_short_sharpe`",
        "tags.`evaluation_window`",
        "tags.`dataset_fingerprint`",
    ]
    state = {"selectedColumns": columns, "orderByKey": f"metrics.`{metric}`", "orderByAsc": False}
    saved_ms = int(time.time() * 1000)
    return json.dumps(
        {
            "name": f"Promotion metric ({metric})",
            "createdAt": saved_ms,
            "updatedAt": saved_ms,
            "state": json.dumps(state),
        }
    )


def _view_content(view: str | None) -> tuple[object, object] | None:
    """A saved view's name and state, without when it was saved."""
    if view is None:
        return None
    envelope = json.loads(view)
    return envelope.get("name"), envelope.get("state")


def promotion_view_url(config: TrackingConfig, experiment_id: str) -> str:
    """The UI's page of an experiment's runs in the promotion view."""
    return f"{config.ui_url.rstrip('/')}/#/experiments/{experiment_id}?viewStateShareKey={PROMOTION_VIEW_KEY}"


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
    return f"{config.ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def version_with_alias(client: MlflowClient, model_name: str, alias: str) -> ModelVersion | None:
    """The version of a registered model that carries `alias`, if the model and the alias exist."""
    try:
        version = client.get_registered_model(model_name).aliases.get(alias)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    return None if version is None else client.get_model_version(model_name, str(version))


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
