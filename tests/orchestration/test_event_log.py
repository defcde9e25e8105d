"""The instance's event log (orchestration.event_log) writes a window's per-day events in one insert per
batch: every event keeps its own row, and the asset index points at the batch's last one."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import dagster as dg
import psycopg
import pytest
from dagster import DagsterEvent, DagsterEventType, EventLogEntry
from dagster._core.events import AssetMaterializationPlannedData, StepMaterializationData

from orchestration.event_log import BatchedPlanningEventLogStorage
from tests.support import throwaway_database

ASSET = dg.AssetKey("raw_daily_prices")
DAYS = [f"2024-01-{day:02d}" for day in range(2, 31)]
RUN_ID = "a-window-run"


@pytest.fixture
def database() -> Iterator[str]:
    with throwaway_database(migrated=False) as url:
        yield url


@pytest.fixture
def storage(database: str) -> Iterator[BatchedPlanningEventLogStorage]:
    event_log = BatchedPlanningEventLogStorage(postgres_url=database)
    try:
        yield event_log
    finally:
        event_log.dispose()


def _entry(event: DagsterEvent) -> EventLogEntry:
    return EventLogEntry(
        error_info=None,
        level=logging.DEBUG,
        user_message="",
        run_id=RUN_ID,
        timestamp=time.time(),
        step_key="raw_market_data",
        job_name="full_build",
        dagster_event=event,
    )


def _planned(day: str) -> EventLogEntry:
    return _entry(
        DagsterEvent.build_asset_materialization_planned_event(
            "full_build", "raw_market_data", AssetMaterializationPlannedData(ASSET, partition=day)
        )
    )


def _materialized(day: str) -> EventLogEntry:
    materialization = dg.AssetMaterialization(ASSET, partition=day, metadata={"day": day})
    return _entry(
        DagsterEvent(
            DagsterEventType.ASSET_MATERIALIZATION.value,
            "full_build",
            step_key="raw_market_data",
            event_specific_data=StepMaterializationData(materialization),
        )
    )


def _partition_of_row(database: str, storage_id: int | None) -> str | None:
    assert storage_id is not None
    with psycopg.connect(database) as conn:
        row = conn.execute("select partition from event_logs where id = %s", (storage_id,)).fetchone()
    return None if row is None else row[0]


def test_a_windows_planned_and_materialized_days_keep_one_row_each(
    storage: BatchedPlanningEventLogStorage, database: str
) -> None:
    storage.store_event_batch([_planned(day) for day in DAYS])
    (entry,) = storage.get_asset_records([ASSET])
    assert entry.asset_entry.last_run_id == RUN_ID
    # Planned and not yet materialized: each day is in progress, by its own row.
    assert set(
        storage.get_latest_asset_partition_materialization_attempts_without_materializations(ASSET)
    ) == set(DAYS)

    storage.store_event_batch([_materialized(day) for day in DAYS])
    assert storage.get_materialized_partitions(ASSET) == set(DAYS)
    assert storage.get_latest_asset_partition_materialization_attempts_without_materializations(ASSET) == {}
    (entry,) = storage.get_asset_records([ASSET])
    latest = entry.asset_entry.last_materialization_record
    assert latest is not None and latest.partition_key == DAYS[-1]
    assert _partition_of_row(database, latest.storage_id) == DAYS[-1]
    # Each row holds its own day's event.
    records = storage.fetch_materializations(ASSET, limit=len(DAYS) + 1).records
    assert sorted(
        (record.partition_key, record.asset_materialization.metadata["day"].value)  # type: ignore[union-attr]
        for record in records
    ) == [(day, day) for day in DAYS]
