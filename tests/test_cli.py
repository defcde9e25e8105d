"""The `stockyard` command, run as a user runs it, against the real services."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import httpx
import psycopg
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from mlflow import MlflowClient

from cli.main import api_beside
from cli.services import port_open
from ml.metrics import CROSS_SECTIONAL_METRICS, FORECAST_METRICS
from ml.tracking import PARENT_RUN_TAG
from orchestration import launch
from orchestration.automation import TRIGGER_TAG
from orchestration.jobs import FULL_BUILD
from orchestration.launch import LOCATION_NAME, TRIGGER
from serving.settings import get_api_settings
from stockyard.endpoints import sibling_database_url
from stockyard.settings import PROJECT_ROOT
from tests.support import create_database, throwaway_database, wait_until_ready

STOCKYARD = [sys.executable, "-m", "cli.main"]
# Walk-forward and models sized for the 112 trading days and 12 symbols of the whole-graph test.
SMALL_TRAINING = {
    "STOCKYARD_ML_FOLDS": "2",
    "STOCKYARD_ML_TEST_DAYS": "15",
    "STOCKYARD_ML_VALIDATION_DAYS": "10",
    "STOCKYARD_ML_MIN_TRAIN_DAYS": "40",
    "STOCKYARD_ML_XGBOOST_ROUNDS": "20",
    "STOCKYARD_ML_LSTM_EPOCHS": "1",
    "STOCKYARD_ML_LSTM_SAMPLES_PER_EPOCH": "1000",
    "STOCKYARD_ML_PROPHET_HISTORY_DAYS": "100",
    "STOCKYARD_ML_PROPHET_MIN_HISTORY_DAYS": "30",
    "STOCKYARD_ML_THREADS": "1",
    "STOCKYARD_ML_SEEDS": "[7]",
}


@dataclass(frozen=True)
class GraphRun:
    env: dict[str, str]
    result: subprocess.CompletedProcess[str]


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(STOCKYARD + args, env=env, capture_output=True, text=True, timeout=900, check=False)


@pytest.fixture
def cli_env(empty_database_url: str, redis_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "STOCKYARD_SERVICES_DATABASE_URL": empty_database_url,
        "STOCKYARD_SERVICES_REDIS_URL": redis_url,
        "STOCKYARD_SERVICES_STATE_DIR": str(tmp_path / "state"),
        "STOCKYARD_MARKET_DATA_START": "2025-01-02",
        "STOCKYARD_MARKET_DATA_SAMPLE_SYMBOLS": "12",
    }


@pytest.fixture(scope="module")
def graph(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphRun]:
    """The whole graph materialized once by `stockyard materialize` on a warehouse of its own."""
    with throwaway_database() as database_url:
        env = {
            **os.environ,
            "STOCKYARD_SERVICES_DATABASE_URL": database_url,
            "STOCKYARD_SERVICES_REDIS_URL": redis_url,
            "STOCKYARD_SERVICES_STATE_DIR": str(tmp_path_factory.mktemp("graph") / "state"),
            "STOCKYARD_MARKET_DATA_START": "2025-01-02",
            "STOCKYARD_MARKET_DATA_SAMPLE_SYMBOLS": "12",
            **SMALL_TRAINING,
        }
        yield GraphRun(env, run(["materialize", "--start", "2025-01-02", "--end", "2025-06-13"], env))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_services_status_names_the_configured_services(cli_env: dict[str, str]) -> None:
    result = run(["services", "status"], cli_env)
    assert result.returncode == 0, result.stderr
    assert "external" in result.stdout and cli_env["STOCKYARD_SERVICES_DATABASE_URL"] in result.stdout


@pytest.mark.slow
def test_materialize_builds_the_whole_graph_through_the_dagster_instance(graph: GraphRun) -> None:
    env, result = graph.env, graph.result
    assert result.returncode == 0, result.stdout + result.stderr
    # Every asset in one run of the job the UI and the schedules know, the days as one partition range.
    assert "launching full_build: 29 asset(s) for 2025-01-02...2025-06-13" in result.stdout

    with psycopg.connect(env["STOCKYARD_SERVICES_DATABASE_URL"]) as conn:
        raw_days = conn.execute("select count(distinct date) from raw.daily_prices").fetchone()
        feature_days = conn.execute("select count(distinct date) from marts.fct_stock_features").fetchone()
        latest = conn.execute("select count(*) from marts.fct_latest_prices").fetchone()
    assert raw_days == feature_days == (112,)
    assert latest is not None and latest[0] > 0
    with psycopg.connect(sibling_database_url(env["STOCKYARD_SERVICES_DATABASE_URL"], "_dagster")) as conn:
        runs = conn.execute("select pipeline_name, status from runs").fetchall()
        checks = conn.execute(
            "select count(*), count(distinct (asset_key, check_name)), count(partition)"
            " from asset_check_executions"
        ).fetchone()
        materialized = conn.execute(
            "select event from event_logs where dagster_event_type = 'ASSET_MATERIALIZATION' "
            "and asset_key = %s",
            ('["xgboost_model"]',),
        ).fetchall()
    assert runs == [("full_build", "SUCCESS")], "one run, recorded in PostgreSQL run storage"
    assert checks is not None and checks[0] > 0, "dbt tests, quality and promotion checks ran as asset checks"
    # One planned execution per check, not one per check and day: the window's length costs no planning.
    assert checks[0] == checks[1] and checks[2] == 0

    # Trained, tracked in the MLflow database beside the warehouse, registered and promoted.
    tracking_uri = sibling_database_url(env["STOCKYARD_SERVICES_DATABASE_URL"], "_mlflow")
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    for family in ("xgboost", "lstm", "prophet"):
        experiment = client.get_experiment_by_name(f"stockyard-{family}")
        assert experiment is not None
        # The family's run; its seed's run is nested under it.
        family_runs = client.search_runs([experiment.experiment_id])
        (run_,) = [run for run in family_runs if PARENT_RUN_TAG not in run.data.tags]
        assert len(family_runs) == 2
        expected = set(CROSS_SECTIONAL_METRICS) | (set(FORECAST_METRICS) if family == "prophet" else set())
        assert expected <= set(run_.data.metrics)
        if family == "xgboost":
            xgboost_run = run_
    assert client.get_registered_model("stockyard-xgboost").aliases["champion"] == 1
    assert any(Path(env["STOCKYARD_SERVICES_STATE_DIR"], "mlflow-artifacts").rglob("ic_timeseries.png"))
    (event,) = materialized
    run_path = f"/#/experiments/{xgboost_run.info.experiment_id}/runs/{xgboost_run.info.run_id}"
    assert f"http://127.0.0.1:5000{run_path}" in event[0], "the Dagster metadata links the MLflow run"

    # Every product, made with the champions, from the synthetic market.
    with psycopg.connect(env["STOCKYARD_SERVICES_DATABASE_URL"]) as conn:
        recommended = conn.execute(
            "select count(distinct date), count(*), array_agg(distinct model_version), "
            "array_agg(distinct data_source) from products.recommendations"
        ).fetchone()
        products = {
            table: conn.execute(f"select count(*) from products.{table}").fetchone()
            for table in ("backtests", "signal_health", "model_versions")
        }
        forecast_steps = conn.execute(
            "select count(*), count(distinct symbol) from products.forecasts"
        ).fetchone()
        bars = conn.execute("select count(*) from marts.fct_daily_prices").fetchone()
    assert recommended == (112, bars[0] if bars else None, ["1"], ["synthetic"])
    # 21 trading days ahead for each symbol Prophet had enough history of.
    assert forecast_steps is not None and forecast_steps[0] == 21 * forecast_steps[1] >= 21 * 10
    assert products == {
        "backtests": (1,),
        "signal_health": (107,),
        "model_versions": (3,),
    }


@pytest.mark.slow
def test_serve_answers_every_endpoint_on_the_built_graph(graph: GraphRun) -> None:
    assert graph.result.returncode == 0, "the graph was built"
    port = free_port()
    env = graph.env | {"STOCKYARD_API_CACHE_PREFIX": f"stockyard-test-cli:{port}"}
    with psycopg.connect(env["STOCKYARD_SERVICES_DATABASE_URL"]) as conn:
        # A symbol with every part of the analysis: forecast, backtest holding, recommendation.
        row = conn.execute(
            "select symbol from products.forecasts join products.backtest_positions using (symbol) "
            "order by symbol limit 1"
        ).fetchone()
    assert row is not None
    symbol, day = row[0], "2025-06-13"
    gets = {
        "/api/v1/health/live": {},
        "/api/v1/health/ready": {},
        "/api/v1/sectors": {},
        "/api/v1/models": {},
        "/api/v1/stocks": {},
        "/api/v1/stocks/search": {"q": symbol},
        "/api/v1/stocks/top": {},
        f"/api/v1/stocks/{symbol}": {},
        f"/api/v1/stocks/{symbol}/prices": {"interval": "weekly"},
        "/api/v1/prices": {"symbols": symbol},
        "/api/v1/prices/latest": {"symbols": symbol},
        "/api/v1/recommendations": {},
        f"/api/v1/recommendations/symbols/{symbol}": {},
        f"/api/v1/recommendations/{day}": {},
        f"/api/v1/analysis/{symbol}": {},
        "/stocks": {},
        "/stocks/search": {"q": symbol},
        "/stocks/top": {},
        f"/stocks/{symbol}": {},
        f"/stocks/{symbol}/prices": {},
        "/api/v1/screens/fields": {},
    }
    server = subprocess.Popen(
        [*STOCKYARD, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(f"{base}/api/v1/health/live", server)
        spec = httpx.get(f"{base}/openapi.json").json()
        answers = {path: httpx.get(base + path, params=params, timeout=10) for path, params in gets.items()}
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

    templates = {
        path.replace("{symbol}", symbol).replace("{day}", day)
        for path, operations in spec["paths"].items()
        # The signed-in routes (those that may answer 401) are the accounts' tests' (tests/serving).
        if "get" in operations and "401" not in operations["get"]["responses"]
    }
    assert templates == set(gets), "every public endpoint of the OpenAPI spec is asked"
    assert {path: answer.status_code for path, answer in answers.items()} == dict.fromkeys(gets, 200)
    bodies = {path: answer.json() for path, answer in answers.items()}
    assert {body["data_source"] for body in bodies.values() if "data_source" in body} == {"synthetic"}
    assert bodies["/api/v1/health/ready"]["status"] == "ready"
    assert bodies["/api/v1/health/ready"]["champion_models"]["stockyard-xgboost"] == "1"
    recommendations = bodies["/api/v1/recommendations"]
    assert (recommendations["as_of"], recommendations["model_version"]) == (day, "1")
    assert recommendations["items"][0]["rank"] == 1
    analysis = bodies[f"/api/v1/analysis/{symbol}"]
    assert analysis["missing"] == []
    assert all(
        analysis[part] is not None for part in ("indicators", "recommendation", "forecast", "backtest")
    )
    models = {model["model_name"]: model for model in bodies["/api/v1/models"]["models"]}
    assert models["stockyard-xgboost"]["champion"]["latest_backtest"] is not None


def test_run_keeps_the_api_up_beside_the_uis(graph: GraphRun, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("STOCKYARD_API_PORT", str(port))
    env = graph.env | {
        "STOCKYARD_API_PORT": str(port),
        "STOCKYARD_API_CACHE_PREFIX": f"stockyard-test-run:{port}",
    }
    get_api_settings.cache_clear()
    try:
        with api_beside(env):
            wait_until_ready(f"http://127.0.0.1:{port}/api/v1/health/ready")
            ready = httpx.get(f"http://127.0.0.1:{port}/api/v1/health/ready").json()
    finally:
        get_api_settings.cache_clear()
    assert ready["latest_data_date"] == "2025-06-13" and ready["recommendations_date"] == "2025-06-13"
    assert not port_open(port), "the API stops with `stockyard run`"


@pytest.mark.slow
def test_mlflow_command_serves_the_ui_on_the_tracking_store(graph: GraphRun) -> None:
    port = free_port()
    env = graph.env | {"STOCKYARD_ML_UI_PORT": str(port)}
    # A session of its own, so the server `stockyard mlflow` starts stops with it.
    server = subprocess.Popen(
        [*STOCKYARD, "mlflow"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
                experiments = httpx.get(
                    f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search",
                    params={"max_results": 10},
                    timeout=5,
                )
                break
            except httpx.TransportError:
                assert server.poll() is None, "stockyard mlflow exited early"
                assert time.monotonic() < deadline, "the MLflow UI did not answer within 120 s"
                time.sleep(0.5)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    assert page.status_code == 200 and "MLflow" in page.text
    assert experiments.status_code == 200
    names = {experiment["name"] for experiment in experiments.json()["experiments"]}
    assert {"stockyard-xgboost", "stockyard-lstm", "stockyard-prophet"} <= names, "the graph's runs show"
    assert f"MLflow UI on http://127.0.0.1:{port}" in output
    # Each family's runs table, on the UI's model-training side, in the project's view.
    xgboost = next(e for e in experiments.json()["experiments"] if e["name"] == "stockyard-xgboost")
    assert (
        f"stockyard-xgboost: http://127.0.0.1:{port}/#/experiments/{xgboost['experiment_id']}/runs"
        "?workflowType=machine_learning&viewStateShareKey=stockyard-runs"
    ) in output


def test_materialize_rejects_a_bad_date(cli_env: dict[str, str]) -> None:
    result = run(["materialize", "--start", "2025-13-01"], cli_env)
    assert result.returncode == 2
    assert "'2025-13-01' is not a date" in result.stderr


@contextmanager
def instance_of(env: dict[str, str]) -> Iterator[dg.DagsterInstance]:
    """The Dagster instance `stockyard` uses with `env`, on the Dagster database beside its warehouse."""
    database = sibling_database_url(env["STOCKYARD_SERVICES_DATABASE_URL"], "_dagster")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_DATABASE_URL", database)
        with dg.DagsterInstance.from_config(str(PROJECT_ROOT / "dagster_home")) as instance:
            yield instance


def test_materialize_launches_a_run_of_the_code_location_and_exits_non_zero_when_it_fails(
    cli_env: dict[str, str],
) -> None:
    """No daemon runs here: the run launcher starts the run at once (the queue and the daemon are
    tests/test_cli_automation.py's)."""
    # Prices before the universe: the ingestion step fails, saying raw.stocks is empty.
    failed = run(["materialize", "--select", "key:raw_daily_prices", "--end", "2025-01-03"], cli_env)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    (step,) = [line for line in failed.stdout.splitlines() if line.startswith("  raw_market_data: failed:")]
    assert "raw.stocks is empty" in step

    built = run(["materialize", "--select", "group:ingestion", "--end", "2025-01-10"], cli_env)
    assert built.returncode == 0, built.stdout + built.stderr
    assert "started here (no daemon running)" in built.stdout
    # The steps as they finished, checks included.
    assert "  raw_market_data: done in " in built.stdout
    assert "check row_rules on raw_daily_prices: passed" in built.stdout
    # Those lines, and what the assets log, not Dagster's engine events (a line per day and asset).
    assert " - DEBUG - " not in built.stdout + built.stderr

    with instance_of(cli_env) as instance:
        succeeded, failure = instance.get_runs()
        started = instance.get_records_for_run(
            succeeded.run_id, of_type={dg.DagsterEventType.RUN_STARTING, dg.DagsterEventType.RUN_ENQUEUED}
        ).records
    assert failure.status == dg.DagsterRunStatus.FAILURE
    assert succeeded.status == dg.DagsterRunStatus.SUCCESS and succeeded.job_name == "full_build"
    assert [record.event_log_entry.dagster_event_type for record in started] == [
        dg.DagsterEventType.RUN_STARTING
    ]
    # A run of the code location the daemon and the UI load, as a schedule's is, not of a job this process
    # built: the UI can re-execute it, a run launcher elsewhere could start it.
    origin, code_origin = succeeded.remote_job_origin, succeeded.job_code_origin
    assert origin is not None and origin.location_name == LOCATION_NAME
    assert code_origin is not None
    pointer = code_origin.repository_origin.code_pointer
    assert pointer.describe() == "from orchestration.definitions import defs"
    # Tagged as the schedules tag theirs: who launched it, and its trading days.
    assert succeeded.tags[TRIGGER_TAG] == TRIGGER
    assert succeeded.tags[ASSET_PARTITION_RANGE_START_TAG] == "2025-01-02"
    assert succeeded.tags[ASSET_PARTITION_RANGE_END_TAG] == "2025-01-10"
    assert succeeded.asset_selection == {
        dg.AssetKey(key) for key in ("stock_universe", "raw_daily_prices", "raw_corporate_actions")
    }


def test_a_stopped_materialize_and_a_run_terminated_in_the_ui_end_canceled(cli_env: dict[str, str]) -> None:
    """The run's process is forked from the command (no daemon, Dagster's default run launcher): SIGTERM
    to the command, or the UI's terminate (the run marked canceling), interrupt it, and the run ends
    canceled rather than failed."""
    arguments = ["materialize", "--select", "group:ingestion+", "--end", "2025-01-10"]

    def start_and_wait_for_a_step() -> tuple[subprocess.Popen[str], str]:
        command = subprocess.Popen(
            STOCKYARD + arguments, env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert command.stdout is not None
        run_id = ""
        for line in command.stdout:
            if "started here (no daemon running)" in line:
                run_id = line.split()[1]
            if line.startswith("  stock_universe: done"):
                return command, run_id
        raise AssertionError(f"no step finished (exit {command.wait()})")

    stopped, stopped_run = start_and_wait_for_a_step()
    stopped.send_signal(signal.SIGTERM)
    output, _ = stopped.communicate(timeout=120)
    assert stopped.returncode != 0 and f"stopping run {stopped_run}" in output, output

    terminated, terminated_run = start_and_wait_for_a_step()
    with instance_of(cli_env) as instance:
        run = instance.get_run_by_id(terminated_run)
        assert run is not None
        instance.report_run_canceling(run)  # what the UI's terminate does first
        output, _ = terminated.communicate(timeout=120)
        assert terminated.returncode == 1, output
        statuses = {run_id: instance.get_run_by_id(run_id).status for run_id in (stopped_run, terminated_run)}  # type: ignore[union-attr]
    assert statuses == {
        stopped_run: dg.DagsterRunStatus.CANCELED,
        terminated_run: dg.DagsterRunStatus.CANCELED,
    }


def test_a_run_whose_process_cannot_import_what_its_steps_need_ends_failed(
    cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's process, forked before the run exists, imports what the steps need first: when that fails,
    the run ends failed (its process said why on stderr) rather than waiting to start."""
    for key, value in cli_env.items():
        if key.startswith("STOCKYARD_"):
            monkeypatch.setenv(key, value)
    create_database(cli_env["STOCKYARD_SERVICES_DATABASE_URL"].rsplit("/", 1)[1] + "_dagster")
    monkeypatch.setattr(launch, "PRELOADED_MODULES", ["stockyard.no_such_module"])
    with instance_of(cli_env) as instance:
        location = launch.CodeLocation()
        plan = launch.plan_launch(FULL_BUILD, "stock_universe", location=location)
        finished = launch.launch(plan, instance, location, echo=lambda line: None)
        failures = instance.get_records_for_run(finished.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    assert finished.status == dg.DagsterRunStatus.FAILURE
    (failure,) = failures.records
    assert "The run's process ended (exit code 1)" in failure.event_log_entry.message
