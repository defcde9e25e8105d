"""Run a job of the code location through the Dagster instance (DAGSTER_HOME), as `stockyard run` and
`stockyard materialize` do:
`python -m orchestration.launch [--job full_build] [--select SEL] [--start D --end D] [--missing]`.

With --missing (what `stockyard run` does), only what the instance lacks runs: nothing when every asset is
materialized up to the last closed trading day, the daily_refresh job over the days after the last one built
when only days are new, and full_build (over the window from the first day missing) otherwise.

The run is one run of the named job (a part of it with --select), recorded in the instance's run storage like
the runs the schedules launch, so the UI shows it as one. Its partitioned assets cover the trading days from
--start to --end (default: every partition whose session has closed), given as the run's partition range
tags; its other assets run once, after their parents. Exit status 0 when the run succeeded, 1 when it failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from orchestration.definitions import build_definitions
from orchestration.executors import in_process_run_config
from orchestration.ingestion.assets import INGESTION_GROUP
from orchestration.jobs import DAILY_REFRESH, FULL_BUILD
from orchestration.partitions import closed_partition_keys


def job_named(name: str) -> dg.JobDefinition:
    """The job `name` of the code location, rebuilt in each process that executes a step of it."""
    return build_definitions().resolve_job_def(name)


@dataclass(frozen=True)
class Launch:
    job: str
    asset_keys: list[dg.AssetKey]
    partition_range: tuple[str, str] | None
    run_config: dict[str, Any] = field(default_factory=dict)

    @property
    def tags(self) -> dict[str, str]:
        if self.partition_range is None:
            return {}
        first, last = self.partition_range
        return {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}

    def describe(self) -> str:
        window = f" for {self.partition_range[0]}...{self.partition_range[1]}" if self.partition_range else ""
        return f"{self.job}: {len(self.asset_keys)} asset(s){window}"


def plan_launch(
    job: str, selection: str | None = None, *, start: date | None = None, end: date | None = None
) -> Launch:
    """What a run of `job` (of `selection` within it) covers. Raises ValueError on a selection or window that
    names nothing."""
    defs = build_definitions()
    job_def = defs.resolve_job_def(job)
    graph = defs.resolve_asset_graph()
    in_job = job_def.asset_layer.executable_asset_keys
    if selection is None:
        keys = set(in_job)
    else:
        # Assets computed together (a multi-asset) can only run together.
        selected = dg.AssetSelection.from_string(selection).required_multi_asset_neighbors().resolve(graph)
        keys = set(selected) & set(in_job)
    if not keys:
        raise ValueError(f"nothing in job {job} matches the selection {selection!r}")
    ordered = [key for key in graph.toposorted_asset_keys if key in keys]
    # Ingestion's steps take seconds: a process per step, and the server they fork from, would cost more.
    in_process = all(graph.get(key).group_name == INGESTION_GROUP for key in ordered)
    run_config = in_process_run_config() if in_process else {}
    partitioned = [key for key in ordered if graph.get(key).is_partitioned]
    if not partitioned:
        return Launch(job, ordered, None, run_config)
    partitions_def = graph.get(partitioned[0]).partitions_def
    assert partitions_def is not None
    return Launch(job, ordered, _partition_range(partitions_def, start, end), run_config)


def plan_missing(instance: dg.DagsterInstance) -> Launch | None:
    """What the instance lacks, as a launch (None: nothing)."""
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    keys = [key for key in graph.toposorted_asset_keys if graph.get(key).is_executable]
    never = [key for key in keys if not graph.get(key).is_partitioned and not _materialized(instance, key)]
    partitioned = [key for key in keys if graph.get(key).is_partitioned]
    partitions_def = graph.get(partitioned[0]).partitions_def
    assert partitions_def is not None
    closed = closed_partition_keys(partitions_def)
    if not closed:
        raise ValueError("no trading day has closed since STOCKYARD_MARKET_DATA_START: nothing to build yet")
    missing = {day for key in partitioned for day in set(closed) - instance.get_materialized_partitions(key)}
    if not missing and not never:
        return None
    first = min(missing) if missing else closed[-1]
    if never:
        return plan_launch(FULL_BUILD, start=date.fromisoformat(first))
    return plan_launch(DAILY_REFRESH, start=date.fromisoformat(first))


def _materialized(instance: dg.DagsterInstance, key: dg.AssetKey) -> bool:
    return instance.get_latest_materialization_event(key) is not None


def _partition_range(
    partitions_def: dg.PartitionsDefinition, start: date | None, end: date | None
) -> tuple[str, str]:
    keys = closed_partition_keys(partitions_def)
    if not keys:
        raise ValueError("no trading day has closed since STOCKYARD_MARKET_DATA_START: nothing to build yet")
    inside = [
        k for k in keys if (start is None or k >= start.isoformat()) and (end is None or k <= end.isoformat())
    ]
    if not inside:
        raise ValueError(
            f"no closed trading day between {start} and {end} (partitions run {keys[0]}..{keys[-1]})"
        )
    return inside[0], inside[-1]


def launch(plan: Launch, instance: dg.DagsterInstance) -> dg.ExecutionResult:
    """Execute `plan` as a run of its job on `instance`, its steps in processes of their own."""
    job = dg.build_reconstructable_job(__name__, job_named.__name__, reconstructable_args=(plan.job,))
    return dg.execute_job(
        job,
        instance,
        run_config=plan.run_config,
        tags=plan.tags,
        asset_selection=plan.asset_keys,
        raise_on_error=False,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestration.launch", description=__doc__)
    parser.add_argument("--job", default=FULL_BUILD)
    parser.add_argument("--missing", action="store_true", help="only what the instance lacks (see above)")
    parser.add_argument("--select", default=None, help="Dagster asset selection within the job")
    parser.add_argument("--start", type=date.fromisoformat, default=None)
    parser.add_argument("--end", type=date.fromisoformat, default=None)
    args = parser.parse_args(argv)
    started = time.monotonic()
    with dg.DagsterInstance.get() as instance:
        try:
            plan = (
                plan_missing(instance)
                if args.missing
                else plan_launch(args.job, args.select, start=args.start, end=args.end)
            )
        except ValueError as error:
            print(error, file=sys.stderr)
            return 2
        if plan is None:
            print("nothing new: every asset is materialized up to the last closed trading day", flush=True)
            return 0
        print(f"launching {plan.describe()}", flush=True)
        result = launch(plan, instance)
    outcome = "succeeded" if result.success else "failed"
    print(f"run {result.run_id} of {plan.job} {outcome} in {time.monotonic() - started:.0f} s", flush=True)
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
