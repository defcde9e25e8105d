"""The schedules and sensors, ticked as the daemon ticks them, on an ephemeral instance."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from zoneinfo import ZoneInfo

import dagster as dg
import psycopg
import pytest

from orchestration.automation import FAILURE_RECORDED_TAG, SIGNAL_DECAY, build_automation
from orchestration.definitions import build_definitions
from orchestration.executors import IN_PROCESS_RUN_CONFIG
from orchestration.jobs import DAILY_REFRESH, FULL_BUILD, RETRAIN
from orchestration.launch import CONSOLE_RUN_CONFIG, plan_launch, plan_missing
from orchestration.partitions import EXCHANGE_TIMEZONE, trading_day_partitions
from orchestration.resources import WarehouseResource
from orchestration.settings import AutomationSettings
from stockyard.run_failures import read_run_failures

NEW_YORK = ZoneInfo(EXCHANGE_TIMEZONE)


def automation(**settings: object) -> dict[str, dg.ScheduleDefinition | dg.SensorDefinition]:
    schedules, sensors = build_automation(AutomationSettings(**settings))  # type: ignore[arg-type]
    return {definition.name: definition for definition in [*schedules, *sensors]}


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


@pytest.fixture(scope="module")
def code_location() -> dg.RepositoryDefinition:
    """The code location's definitions, which resolve the partition a schedule requests."""
    return build_definitions().get_repository_def()


def tick(
    repository: dg.RepositoryDefinition, schedule: dg.ScheduleDefinition, at: datetime
) -> dg.RunRequest | dg.SkipReason:
    with dg.build_schedule_context(scheduled_execution_time=at, repository_def=repository) as context:
        result = schedule.evaluate_tick(context)
    if result.skip_message is not None:
        return dg.SkipReason(result.skip_message)
    (request,) = result.run_requests or []
    return request


def test_the_daily_refresh_requests_the_day_after_its_close(code_location: dg.RepositoryDefinition) -> None:
    schedule = code_location.get_schedule_def("daily_refresh_after_close")
    assert isinstance(schedule, dg.ScheduleDefinition) and schedule.job_name == DAILY_REFRESH
    evening = datetime(2025, 11, 26, 18, tzinfo=NEW_YORK)

    request = tick(code_location, schedule, evening)

    assert isinstance(request, dg.RunRequest)
    assert request.partition_key == "2025-11-26"
    # The partition exists that evening already, so the daemon can launch it.
    partitions = trading_day_partitions(date(2025, 1, 2))
    assert partitions.get_partition_keys(current_time=evening)[-1] == "2025-11-26"


def test_the_daily_refresh_skips_a_holiday(code_location: dg.RepositoryDefinition) -> None:
    schedule = code_location.get_schedule_def("daily_refresh_after_close")
    result = tick(code_location, schedule, datetime(2025, 11, 27, 18, tzinfo=NEW_YORK))  # Thanksgiving

    assert isinstance(result, dg.SkipReason)
    assert "2025-11-27 is not an NYSE trading day" in (result.skip_message or "")


def report_signal_health(instance: dg.DagsterInstance, *, passed: bool) -> None:
    instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(
            asset_key=SIGNAL_DECAY.asset_key,
            check_name=SIGNAL_DECAY.name,
            passed=passed,
            severity=dg.AssetCheckSeverity.WARN,
        )
    )


def evaluate(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, cursor: str | None):
    with dg.build_sensor_context(instance=instance, cursor=cursor) as context:
        return sensor.evaluate_tick(context)


def run_retraining(instance: dg.DagsterInstance) -> None:
    """A run of the retrain job, as the sensor's request makes the daemon launch."""

    @dg.op
    def train() -> None:
        pass

    @dg.job(name=RETRAIN)
    def retrain() -> None:
        train()

    assert retrain.execute_in_process(instance=instance).success


def test_signal_decay_retrains_once_and_then_waits_for_the_cooldown(instance: dg.DagsterInstance) -> None:
    sensor = automation(retrain_cooldown_hours=72)["retrain_on_signal_decay"]
    assert isinstance(sensor, dg.SensorDefinition)
    report_signal_health(instance, passed=True)
    healthy = evaluate(sensor, instance, None)
    assert healthy.run_requests == [] and "The signal holds" in (healthy.skip_message or "")

    report_signal_health(instance, passed=False)
    decayed = evaluate(sensor, instance, healthy.cursor)
    (request,) = decayed.run_requests or []
    assert request.tags["stockyard/trigger"] == "signal_decay"
    # The same evaluation again launches nothing.
    again = evaluate(sensor, instance, decayed.cursor)
    assert again.run_requests == [] and "since the last tick" in (again.skip_message or "")

    # Retraining ran and the signal is still weak: no second retraining within the cooldown.
    run_retraining(instance)
    report_signal_health(instance, passed=False)
    cooling = evaluate(sensor, instance, again.cursor)
    assert cooling.run_requests == [] and "within the cooldown of 72 hours" in (cooling.skip_message or "")

    # Without a cooldown, a new failed evaluation retrains again.
    report_signal_health(instance, passed=False)
    eager = automation(retrain_cooldown_hours=0)["retrain_on_signal_decay"]
    assert isinstance(eager, dg.SensorDefinition)
    assert len(evaluate(eager, instance, cooling.cursor).run_requests or []) == 1


def test_a_failed_run_is_tagged_and_recorded(instance: dg.DagsterInstance, database_url: str) -> None:
    @dg.op
    def fetch_bars() -> None:
        raise ValueError("the provider answered 503")

    @dg.job(name=DAILY_REFRESH)
    def daily_refresh() -> None:
        fetch_bars()

    result = daily_refresh.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    sensor = automation()["record_run_failures"]
    assert isinstance(sensor, dg.RunStatusSensorDefinition)
    warehouse = WarehouseResource(database_url=database_url)

    for _ in range(2):  # a tick repeated records the run once
        context = dg.build_run_status_sensor_context(
            sensor_name=sensor.name,
            dagster_event=result.get_run_failure_event(),
            dagster_instance=instance,
            dagster_run=result.dagster_run,
        ).for_run_failure()
        sensor(context, warehouse_db=warehouse)

    with psycopg.connect(database_url) as conn:
        failures = [f for f in read_run_failures(conn) if f.run_id == result.run_id]
    (failure,) = failures
    assert (failure.job_name, failure.step_keys) == (DAILY_REFRESH, ("fetch_bars",))
    assert "fetch_bars: " in failure.error and "the provider answered 503" in failure.error
    run = instance.get_run_by_id(result.run_id)
    assert run is not None and run.tags[FAILURE_RECORDED_TAG] == "ops.run_failures"


def test_stockyard_run_builds_what_the_instance_lacks(instance: dg.DagsterInstance) -> None:
    cold = plan_missing(instance)
    assert cold is not None and cold.job == FULL_BUILD
    assert cold.partition_range is not None and cold.partition_range[0] == "2019-01-02"

    # Every unpartitioned asset built once: the days left are a daily refresh's, no retraining.
    graph = build_definitions().resolve_asset_graph()
    for key in graph.toposorted_asset_keys:
        if graph.get(key).is_executable and not graph.get(key).is_partitioned:
            instance.report_runless_asset_event(dg.AssetMaterialization(key))
    days = plan_missing(instance)
    assert days is not None and days.job == DAILY_REFRESH
    assert days.partition_range == cold.partition_range


def test_an_ingestion_backfill_runs_its_steps_in_the_run_process() -> None:
    ingestion = plan_launch(FULL_BUILD, "group:ingestion", start=date(2019, 1, 2), end=date(2019, 12, 31))
    assert ingestion.run_config == IN_PROCESS_RUN_CONFIG | CONSOLE_RUN_CONFIG
    assert ingestion.partition_range == ("2019-01-02", "2019-12-31")
    # dbt and the training keep a process per step, side by side.
    assert plan_launch(FULL_BUILD).run_config == CONSOLE_RUN_CONFIG
    assert plan_launch(FULL_BUILD, "group:ingestion+").run_config == CONSOLE_RUN_CONFIG


@pytest.mark.parametrize(
    ("selection", "reason"),
    [
        ("raw_prices", "AssetKey(s) ['raw_prices'] were selected, but no AssetsDefinition"),
        ("group:", "Invalid selection string: group:"),
        ("group:nothing", "nothing in job full_build matches the selection 'group:nothing'"),
    ],
)
def test_a_selection_that_names_no_asset_is_refused_with_the_reason(selection: str, reason: str) -> None:
    with pytest.raises(ValueError) as refused:
        plan_launch(FULL_BUILD, selection)
    assert reason in str(refused.value)
