"""MLflow wiring that needs no training: where the store is, the UI command line, and how the UI shows a
family's experiment."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import psycopg
import pytest

from ml.config import MLSettings, TrackingConfig
from ml.tracking import (
    EXPERIMENT_KIND_TAG,
    MODEL_TRAINING_KIND,
    configure_tracking,
    ensure_experiment,
    ensure_tracking_database,
    family_runs_urls,
    run_url,
    runs_url,
    share_runs_view,
    ui_command,
)
from stockyard.settings import ServicesSettings
from tests.support import throwaway_database


def test_default_store_is_the_mlflow_database_beside_the_warehouse(tmp_path: Path) -> None:
    settings = ServicesSettings(
        database_url="postgresql://postgres@db.internal:5432/stockyard", state_dir=tmp_path
    )
    config = TrackingConfig.from_settings(settings, MLSettings())
    assert config.tracking_uri == "postgresql://postgres@db.internal:5432/stockyard_mlflow"
    assert config.artifact_root == tmp_path / "mlflow-artifacts"
    assert not config.is_remote and config.ui_url == "http://127.0.0.1:5000"


def test_a_remote_server_can_be_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCKYARD_ML_TRACKING_URI", "http://mlflow.internal:5000")
    config = TrackingConfig.from_settings(ServicesSettings(), MLSettings())
    assert config.is_remote and config.artifact_root is None
    assert config.ui_url == "http://mlflow.internal:5000"
    with pytest.raises(ValueError, match="already serves the UI"):
        ui_command(config)


def test_the_ui_s_address_for_a_browser_can_differ_from_the_server_s(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCKYARD_ML_TRACKING_URI", "http://mlflow:5000")
    monkeypatch.setenv("STOCKYARD_ML_UI_URL", "https://mlflow.example.com")
    config = TrackingConfig.from_settings(ServicesSettings(), MLSettings())
    assert config.tracking_uri == "http://mlflow:5000"
    assert run_url(config, "1", "abc").startswith("https://mlflow.example.com/#/experiments/1/runs/abc")


def test_ui_command_opens_the_store_and_its_artifacts(tmp_path: Path) -> None:
    config = TrackingConfig.for_database(
        "postgresql://postgres@127.0.0.1:5432/x_mlflow", artifact_root=tmp_path
    )
    command = ui_command(config, host="0.0.0.0", port=5055)
    assert command[:4] == [sys.executable, "-m", "mlflow", "server"]
    options = dict(zip(command[4::2], command[5::2], strict=True))
    assert options == {
        "--backend-store-uri": "postgresql://postgres@127.0.0.1:5432/x_mlflow",
        "--host": "0.0.0.0",
        "--port": "5055",
        "--workers": "1",
        "--default-artifact-root": tmp_path.as_uri(),
    }


def test_tracking_database_is_created_when_missing() -> None:
    with throwaway_database() as url:
        tracking_uri = url + "_mlflow"
        ensure_tracking_database(tracking_uri)
        ensure_tracking_database(tracking_uri)  # and left alone when it exists
        with psycopg.connect(tracking_uri) as conn:
            assert conn.execute("select current_database()").fetchone() == (
                url.rsplit("/", 1)[1] + "_mlflow",
            )


def test_experiments_are_typed_as_model_training_and_linked_to_their_runs(tracking: TrackingConfig) -> None:
    client = configure_tracking(tracking)
    experiment_id = ensure_experiment(client, "ui-check", tracking)
    assert client.get_experiment(experiment_id).tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING_KIND
    assert ensure_experiment(client, "ui-check", tracking) == experiment_id
    # The UI's pages, on its model-training side; the runs table in the view stored on the experiment.
    assert runs_url(tracking, experiment_id) == (
        f"{tracking.ui_url}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
        "&viewStateShareKey=stockyard-runs"
    )
    share_runs_view(client, experiment_id, "long_short_sharpe")
    view = json.loads(client.get_experiment(experiment_id).tags["mlflow.sharedViewState.stockyard-runs"])
    assert view["orderByKey"] == "metrics.`long_short_sharpe`" and view["orderByAsc"] is False
    columns = view["selectedColumns"]
    # The promotion metric comes first among the metrics, once; the families' runs only.
    assert columns[0] == "metrics.`long_short_sharpe`" and columns.count(columns[0]) == 1
    assert view["searchFilter"] == "tags.seeds LIKE '%'"
    assert "metrics.`rank_ic`" in columns and "tags.`promotion.decision`" in columns
    # The command line lists the experiments that have the view.
    assert family_runs_urls(client, tracking)["stockyard-ui-check"] == runs_url(tracking, experiment_id)
    assert run_url(tracking, experiment_id, "abc").endswith(
        f"/#/experiments/{experiment_id}/runs/abc?workflowType=machine_learning"
    )
