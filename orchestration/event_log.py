"""The instance's event log: Dagster's PostgreSQL storage, writing a run's planned materializations at once.

A run over a window of N trading days plans one materialization per asset and day before its first step:
Dagster's PostgreSQL storage writes each of those events on its own, two connections apiece (the event,
then the asset index), which made the cold window run wait minutes before starting (and is what upstream's
dagster-io/dagster PR 33231 and issue 31694 are about). Here a batch of them is one insert and one index
transaction, with one index row written per asset. Batches exist when DAGSTER_EVENT_BATCH_SIZE is set,
which `stockyard` does for every process it starts (cli.main.DAGSTER_DEFAULTS); the per-day
materializations a window step reports then come in batches too, which the PostgreSQL storage already
writes at once. Every batch is inserted from one array per column, rather than as a statement with a
VALUES row per event, whose compilation took most of a batch's time (0.8 s for 2,500 events against 0.16 s).
dagster_home/dagster.yaml selects it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as db
from dagster import DagsterEventType, EventLogEntry
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._serdes import ConfigurableClassData
from dagster_postgres.event_log.event_log import PostgresEventLogStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config
from sqlalchemy.dialects.postgresql import ARRAY

PLANNED = DagsterEventType.ASSET_MATERIALIZATION_PLANNED


class BatchedPlanningEventLogStorage(PostgresEventLogStorage):
    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> BatchedPlanningEventLogStorage:
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )

    def prepare_insert_event_batch(self, events: Sequence[EventLogEntry]) -> Any:
        # The rows come back from unnest in the arrays' order, and are inserted (and their ids returned) in
        # it, as from a VALUES list: the callers pair the returned ids with the events by position.
        rows = [self._event_to_row(event) for event in events]
        columns = list(rows[0])
        table = SqlEventLogStorageTable
        arrays = [
            db.cast(
                db.bindparam(f"{column}_values", [row[column] for row in rows]), ARRAY(table.c[column].type)
            )
            for column in columns
        ]
        batch = db.func.unnest(*arrays).table_valued(*columns).render_derived(name="batch")
        return table.insert().from_select(columns, db.select(*(batch.c[column] for column in columns)))

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        planned = [event for event in events if event.dagster_event_type == PLANNED]
        if len(planned) < 2:
            super().store_event_batch(events)
            return
        with self._connect() as conn:
            rows = conn.execute(
                self.prepare_insert_event_batch(planned).returning(SqlEventLogStorageTable.c.id)
            ).fetchall()
        event_ids = [int(row[0]) for row in rows]
        # The asset index keeps, per asset, the run and time of its latest event: its latest planned one in
        # the batch says all the others would (one upsert per asset rather than per asset and day).
        latest = {
            event.dagster_event.asset_key: (event, event_id)
            for event, event_id in zip(planned, event_ids, strict=True)
            if event.dagster_event
        }
        with self.index_transaction() as conn:
            self._store_asset_event_tags(conn, planned, event_ids)
            for event, event_id in latest.values():
                self._store_asset_event(conn, event, event_id)
        others = [event for event in events if event.dagster_event_type != PLANNED]
        if others:
            super().store_event_batch(others)
