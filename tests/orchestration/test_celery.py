"""The Celery executor for real: two Celery worker processes on the test Redis run every step of a job of the
project's definitions, and the training steps are independent, so workers can run them at once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import redis
from dagster._core.execution.api import create_execution_plan

from cli.services import ensure_databases
from ml.config import get_ml_settings
from orchestration.definitions import build_definitions
from orchestration.executors import CELERY_QUEUE, ExecutorSettings, build_executor, one_machine_executor
from orchestration.ml.assets import FAMILIES, TRAINING_TAG, family_seeds
from stockyard.endpoints import resolve_endpoints
from stockyard.marketdata.settings import get_market_data_settings
from stockyard.settings import PROJECT_ROOT, get_services_settings
from tests.orchestration.celery_job import ingestion_day_job

WORKERS = ("first", "second")
DAY = "2024-03-01"
READY_SECONDS = 60


def _clear_settings() -> None:
    from orchestration.executors import get_executor_settings

    for getter in (get_services_settings, get_market_data_settings, get_executor_settings):
        getter.cache_clear()


@pytest.fixture
def celery_environment(
    empty_database_url: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """The settings of a stack on the Celery executor, for this process and the workers alike: its own
    warehouse, state folder and Redis keys (deleted afterwards), the test Redis as broker."""
    key_prefix = f"stockyard-test-celery-{uuid.uuid4().hex[:8]}:"
    variables = {
        "STOCKYARD_SERVICES_DATABASE_URL": empty_database_url,
        "STOCKYARD_SERVICES_REDIS_URL": redis_url,
        "STOCKYARD_SERVICES_STATE_DIR": str(tmp_path / "state"),
        "STOCKYARD_MARKET_DATA_PROVIDERS": "sample",
        "STOCKYARD_MARKET_DATA_START": "2024-01-02",
        "STOCKYARD_MARKET_DATA_SAMPLE_SYMBOLS": "12",
        "STOCKYARD_EXECUTOR_KIND": "celery",
        # Apart from any other run of this test on the same Redis.
        "STOCKYARD_EXECUTOR_CELERY_KEY_PREFIX": key_prefix,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    _clear_settings()
    yield {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    monkeypatch.undo()
    _clear_settings()
    with redis.Redis.from_url(redis_url) as client:
        for key in client.scan_iter(match=f"{key_prefix}*"):
            client.delete(key)


@pytest.fixture
def instance(celery_environment: dict[str, str], tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    """A Dagster instance on PostgreSQL, as the project's: the workers log the steps' events to it."""
    endpoints = resolve_endpoints(get_services_settings())
    ensure_databases(endpoints)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        f"storage:\n  postgres:\n    postgres_url: {endpoints.dagster_database_url}\n"
        "telemetry:\n  enabled: false\n"
    )
    with dg.DagsterInstance.from_config(str(home)) as persistent:
        yield persistent


@pytest.fixture
def workers(celery_environment: dict[str, str], tmp_path: Path) -> Iterator[dict[str, int]]:
    """Two Celery workers (`celery -A orchestration.celery_worker worker`), each running one step at a time
    in its own process (the solo pool): worker name -> pid."""
    started: dict[str, subprocess.Popen[bytes]] = {}
    logs: dict[str, Path] = {}
    try:
        for name in WORKERS:
            logs[name] = tmp_path / f"{name}.log"
            with logs[name].open("wb") as log:
                started[name] = subprocess.Popen(
                    [
                        *(sys.executable, "-m", "celery", "-A", "orchestration.celery_worker", "worker"),
                        *("--hostname", f"{name}@%h", "--queues", CELERY_QUEUE, "--pool", "solo"),
                        *("--without-gossip", "--without-mingle", "--loglevel", "INFO"),
                    ],
                    env=celery_environment,
                    cwd=PROJECT_ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        deadline = time.monotonic() + READY_SECONDS
        for name, process in started.items():
            while b" ready." not in logs[name].read_bytes():
                assert process.poll() is None, f"worker {name} exited:\n{logs[name].read_text()}"
                assert time.monotonic() < deadline, f"worker {name} not ready:\n{logs[name].read_text()}"
                time.sleep(0.2)
        yield {name: process.pid for name, process in started.items()}
    finally:
        for process in started.values():
            process.terminate()
        for process in started.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_the_setting_chooses_the_executor() -> None:
    assert build_executor(ExecutorSettings(kind="multiprocess")) is one_machine_executor(1)
    # On a machine with cores and memory to spare, several training steps (seeds, families) at once.
    for steps in (1, 3):
        executor = build_executor(ExecutorSettings(kind="multiprocess", training_steps=steps))
        mapped = executor.apply_config_mapping({"config": {"in_process": False}}).value
        config = mapped["config"]["multiprocess"]
        assert config["tag_concurrency_limits"] == [{"key": TRAINING_TAG, "limit": steps}]
    celery = build_executor(ExecutorSettings(kind="celery", celery_broker_url="redis://broker:6379/1"))
    assert celery.name == "celery"
    assert ExecutorSettings().kind == "multiprocess"


@pytest.mark.slow
# dagster-celery registers its step task again for every step it submits, which Celery 5.7 warns about.
@pytest.mark.filterwarnings(
    "ignore:Task name 'execute_plan' is already registered:celery.exceptions.DuplicateTaskNameWarning"
)
def test_every_step_runs_on_a_celery_worker(
    instance: dg.DagsterInstance, workers: dict[str, int], celery_environment: dict[str, str]
) -> None:
    result = dg.execute_job(
        dg.reconstructable(ingestion_day_job), instance=instance, tags={"dagster/partition": DAY}
    )
    assert result.success
    records = instance.all_logs(result.run_id)
    started_steps = {
        record.step_key: record.dagster_event.pid
        for record in records
        if record.dagster_event is not None
        and record.dagster_event.event_type == dg.DagsterEventType.STEP_START
    }
    plan = create_execution_plan(ingestion_day_job(), tags={"dagster/partition": DAY})
    assert set(started_steps) == {step.key for step in plan.get_all_steps_in_topo_order()}
    # Every step ran in one of the two worker processes, which said so, and none in this process.
    host = socket.gethostname()
    on_worker = {
        record.step_key: record.dagster_event.engine_event_data.metadata["Celery worker"].value
        for record in records
        if record.dagster_event is not None
        and record.dagster_event.is_engine_event
        and "Celery worker" in record.dagster_event.engine_event_data.metadata
    }
    assert on_worker.keys() == started_steps.keys()
    assert set(on_worker.values()) <= {f"{name}@{host}" for name in WORKERS}
    for step, worker in on_worker.items():
        assert started_steps[step] == workers[worker.partition("@")[0]] != os.getpid()
    materialized = {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}
    assert materialized == {"stock_universe", "raw_daily_prices", "raw_corporate_actions"}


def test_the_model_families_and_their_seeds_train_as_independent_steps() -> None:
    """Every seed's training step of the three families is ready once the dataset is, so the Celery
    executor submits them at once, one worker each."""
    defs = build_definitions()
    job = dg.Definitions.merge(
        defs, dg.Definitions(jobs=[dg.define_asset_job("ml", selection=dg.AssetSelection.groups("ml"))])
    ).resolve_job_def("ml")
    levels = create_execution_plan(job).get_steps_to_execute_by_level()
    ml = get_ml_settings()
    training = {
        f"{family.name}_model.{family.name}_seed_{seed}"
        for family in FAMILIES
        for seed in family_seeds(family, ml)
    }
    assert len(training) == 2 * len(ml.seeds) + 1
    assert [sorted(step.key for step in level) for level in levels if training & {s.key for s in level}] == [
        sorted(training)
    ]
