"""The daemon `stockyard ui` starts runs the automation: a run that fails on a small market is recorded by the
run-failure sensor's tick, end to end through the instance in PostgreSQL."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import psycopg

from stockyard.endpoints import sibling_database_url
from stockyard.run_failures import RunFailure, read_run_failures
from tests.support import throwaway_database, wait_until_ready
from tests.test_cli import free_port, instance_of, run
from tests.test_cli_stopping import stockyard, stop_and_check


def wait_for(what: str, found: Callable[[], object], seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not found():
        assert time.monotonic() < deadline, f"{what} within {seconds:g} s"
        time.sleep(1)


def test_the_daemon_records_a_failed_run(redis_url: str, tmp_path: Path) -> None:
    with throwaway_database() as database_url:
        env = {
            **os.environ,
            "STOCKYARD_SERVICES_DATABASE_URL": database_url,
            "STOCKYARD_SERVICES_REDIS_URL": redis_url,
            "STOCKYARD_SERVICES_STATE_DIR": str(tmp_path / "state"),
            "STOCKYARD_MARKET_DATA_START": "2025-01-02",
            "STOCKYARD_MARKET_DATA_SAMPLE_SYMBOLS": "12",
            "STOCKYARD_AUTOMATION_SENSOR_INTERVAL_SECONDS": "5",
        }
        dagster_database = sibling_database_url(database_url, "_dagster")

        def sensor_ticked() -> bool:
            try:
                with psycopg.connect(dagster_database) as conn:
                    row = conn.execute(
                        "select count(*) from job_ticks where tick_body like '%record_run_failures%'"
                    ).fetchone()
            except psycopg.Error:  # the instance's tables are not made yet
                return False
            return row is not None and row[0] > 0

        def recorded() -> list[RunFailure]:
            with psycopg.connect(database_url) as conn:
                return read_run_failures(conn)

        port = free_port()
        with stockyard(["ui", "--port", str(port)], env) as ui:
            wait_until_ready(f"http://127.0.0.1:{port}/server_info", ui, seconds=120)
            # A run-failure sensor watches the runs that end after its first tick.
            wait_for("the run-failure sensor ticked", sensor_ticked)
            # Prices before the universe: the ingestion step fails, saying raw.stocks is empty.
            failed = run(["materialize", "--select", "key:raw_daily_prices", "--end", "2025-01-03"], env)
            assert failed.returncode == 1, failed.stdout + failed.stderr
            # Through the run queue, which the UI's daemon takes it from, as it takes a schedule's run.
            assert "queued, the daemon launches it" in failed.stdout
            wait_for("the failed run recorded in ops.run_failures", recorded)
            stop_and_check(ui, [port], signal.SIGINT)
        with instance_of(env) as instance:
            (failed_run,) = instance.get_runs()
            queued = instance.get_records_for_run(
                failed_run.run_id, of_type=dg.DagsterEventType.RUN_ENQUEUED
            ).records
        assert failed_run.status == dg.DagsterRunStatus.FAILURE and len(queued) == 1

        (failure,) = recorded()
        assert failure.job_name == "full_build"
        assert failure.step_keys == ("raw_market_data",)
        assert "raw.stocks is empty" in failure.error
