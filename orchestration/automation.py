"""What makes the platform run itself: schedules and sensors, which the Dagster daemon (`stockyard ui`)
evaluates, and the freshness policies of what the API serves.

- daily_refresh_after_close: the daily refresh of the day's partition on NYSE trading days after the close;
  a tick on a weekday the exchange is closed skips, saying so.
- weekly_retrain: the retrain job once a week.
- retrain_on_signal_decay: the retrain job when signal health's check reports the realized rank IC below its
  floor, once per failed evaluation and never while a retraining started within the cooldown.
- record_run_failures: every failed run is tagged and recorded in ops.run_failures.

Why schedules and sensors rather than declarative automation conditions: see the README ("Automation").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
from dagster._core.storage.asset_check_execution_record import (
    COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES,
)

from orchestration.ingestion.assets import RAW_FRESHNESS
from orchestration.jobs import DAILY_REFRESH, RETRAIN
from orchestration.partitions import EXCHANGE_TIMEZONE
from orchestration.products.assets import (
    BACKTEST,
    FORECASTS,
    MODEL_VERSIONS,
    RECOMMENDATIONS,
    SIGNAL_HEALTH,
    SIGNAL_HEALTH_CHECK,
)
from orchestration.resources import WarehouseResource
from orchestration.settings import AutomationSettings
from stockyard.calendar import is_trading_day
from stockyard.run_failures import RunFailure, record_run_failure

SIGNAL_DECAY = dg.AssetCheckKey(SIGNAL_HEALTH, SIGNAL_HEALTH_CHECK)
# Tags of the runs automation launches or records, shown on the run in the UI.
TRIGGER_TAG = "stockyard/trigger"
FAILURE_RECORDED_TAG = "stockyard/failure_recorded"

# The marts and products the API reads. Those the daily refresh rebuilds are as fresh as the raw bars must be
# (a long weekend is four days); those made with the models follow the weekly retraining.
SERVED_DAILY = [
    dg.AssetKey(name)
    for name in (
        "dim_stocks",
        "fct_corporate_actions",
        "fct_daily_prices",
        "fct_latest_prices",
        "fct_sector_daily",
        "fct_stock_features",
    )
] + [RECOMMENDATIONS, SIGNAL_HEALTH]
SERVED_WEEKLY = [FORECASTS, BACKTEST, MODEL_VERSIONS]
WEEKLY_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(days=15), warn_window=timedelta(days=8)
)


def with_freshness_policies(
    assets: Sequence[dg.AssetsDefinition | dg.AssetSpec],
) -> Sequence[dg.AssetsDefinition | dg.AssetSpec]:
    """`assets` with the freshness policies of the served marts and products."""
    policies = dict.fromkeys(SERVED_DAILY, RAW_FRESHNESS) | dict.fromkeys(SERVED_WEEKLY, WEEKLY_FRESHNESS)

    def apply(spec: dg.AssetSpec) -> dg.AssetSpec:
        policy = policies.get(spec.key)
        return spec if policy is None else spec.replace_attributes(freshness_policy=policy)

    return dg.map_asset_specs(apply, assets)


def build_automation(
    settings: AutomationSettings,
) -> tuple[list[dg.ScheduleDefinition], list[dg.SensorDefinition]]:
    schedules = [
        _daily_refresh_schedule(settings),
        dg.ScheduleDefinition(
            name="weekly_retrain",
            cron_schedule=settings.retrain_cron,
            execution_timezone=EXCHANGE_TIMEZONE,
            job_name=RETRAIN,
            tags={TRIGGER_TAG: "weekly_retrain"},
            default_status=dg.DefaultScheduleStatus.RUNNING,
            description="Retrain every family on the marts as they are, once a week.",
        ),
    ]
    sensors = [_signal_decay_sensor(settings), _run_failure_sensor(settings)]
    return schedules, sensors


def _daily_refresh_schedule(settings: AutomationSettings) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="daily_refresh_after_close",
        cron_schedule=settings.daily_refresh_cron,
        execution_timezone=EXCHANGE_TIMEZONE,
        job_name=DAILY_REFRESH,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="The daily refresh of the day's partition on NYSE trading days, after the close.",
    )
    def daily_refresh_after_close(
        context: dg.ScheduleEvaluationContext,
    ) -> dg.RunRequest | dg.SkipReason:
        day = context.scheduled_execution_time.astimezone(ZoneInfo(EXCHANGE_TIMEZONE)).date()
        if not is_trading_day(day):
            return dg.SkipReason(f"{day} is not an NYSE trading day: there is no new day to refresh.")
        return dg.RunRequest(
            run_key=day.isoformat(),
            partition_key=day.isoformat(),
            tags={TRIGGER_TAG: "daily_refresh_after_close"},
        )

    return daily_refresh_after_close


def _signal_decay_sensor(settings: AutomationSettings) -> dg.SensorDefinition:
    cooldown = timedelta(hours=settings.retrain_cooldown_hours)

    @dg.sensor(
        name="retrain_on_signal_decay",
        job_name=RETRAIN,
        minimum_interval_seconds=settings.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Retrains when {SIGNAL_DECAY.to_user_string()} fails (the realized rank IC fell below "
        f"its floor): once per failed evaluation, and not while a retraining started in the last "
        f"{settings.retrain_cooldown_hours:g} hours (STOCKYARD_AUTOMATION_RETRAIN_COOLDOWN_HOURS).",
    )
    def retrain_on_signal_decay(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        records = context.instance.event_log_storage.get_asset_check_execution_history(
            SIGNAL_DECAY, limit=1, status=set(COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES)
        )
        if not records:
            return dg.SkipReason(f"{SIGNAL_DECAY.to_user_string()} has not been evaluated yet.")
        record = records[0]
        # Each evaluation is judged once, whatever the outcome: the cursor is the last one judged.
        if context.cursor is not None and record.id <= int(context.cursor):
            return dg.SkipReason(f"No evaluation of {SIGNAL_DECAY.to_user_string()} since the last tick.")
        context.update_cursor(str(record.id))
        evaluation = record.event.asset_check_evaluation if record.event else None
        if evaluation is None or evaluation.passed:
            return dg.SkipReason(
                f"The signal holds: {SIGNAL_DECAY.to_user_string()} passed in {record.run_id}."
            )
        since = datetime.now(UTC) - cooldown
        recent = context.instance.get_run_records(
            dg.RunsFilter(job_name=RETRAIN, created_after=since), limit=1
        )
        if recent:
            retraining = recent[0].dagster_run.run_id
            return dg.SkipReason(
                f"The signal decayed (run {record.run_id}), but retraining run {retraining} "
                f"started at {recent[0].create_timestamp:%Y-%m-%d %H:%M} UTC, within the cooldown of "
                f"{settings.retrain_cooldown_hours:g} hours."
            )
        return dg.RunRequest(
            run_key=f"signal-decay-{record.id}",
            tags={TRIGGER_TAG: "signal_decay", "stockyard/decayed_in_run": record.run_id},
        )

    return retrain_on_signal_decay


def _run_failure_sensor(settings: AutomationSettings) -> dg.SensorDefinition:
    @dg.run_failure_sensor(
        name="record_run_failures",
        # Also the runs `stockyard materialize` executes itself, which belong to no code location's launch.
        monitor_all_code_locations=True,
        minimum_interval_seconds=settings.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Tags every failed run and records it in ops.run_failures (the run, its job, when, "
        "why and which steps failed), where an operator and the API's admin view find it.",
    )
    def record_run_failures(context: dg.RunFailureSensorContext, warehouse_db: WarehouseResource) -> None:
        record_failure(context, warehouse_db)

    return record_run_failures


def record_failure(context: dg.RunFailureSensorContext, warehouse_db: WarehouseResource) -> RunFailure:
    """Record the failed run of `context` in ops.run_failures and tag it saying so."""
    run = context.dagster_run
    steps = context.get_step_failure_events()
    reasons = [context.failure_event.message or "the run failed"]
    for step in steps:
        error = step.step_failure_data.error
        # Dagster wraps what the step raised: the innermost error says what went wrong.
        while error is not None and error.cause is not None:
            error = error.cause
        reasons.append(f"{step.step_key}: {error.message.strip() if error else 'failed'}")
    record = context.instance.get_run_record_by_id(run.run_id)
    ended = record.end_time if record is not None and record.end_time is not None else None
    failure = RunFailure(
        run_id=run.run_id,
        job_name=run.job_name,
        failed_at=datetime.fromtimestamp(ended, UTC) if ended is not None else datetime.now(UTC),
        error="\n".join(reasons),
        step_keys=tuple(dict.fromkeys(step.step_key for step in steps if step.step_key)),
    )
    with warehouse_db.connect() as conn:
        record_run_failure(conn, failure)
    context.instance.add_run_tags(run.run_id, {FAILURE_RECORDED_TAG: "ops.run_failures"})
    return failure
