"""Run a job of the code location through the Dagster instance (DAGSTER_HOME), as `stockyard run` and
`stockyard materialize` do:
`python -m orchestration.launch [--job full_build] [--select SEL] [--start D --end D] [--missing]`.

With --missing (what `stockyard run` does), only what the instance lacks runs: nothing when every asset is
materialized up to the last closed trading day, the daily_refresh job over the days after the last one built
when only days are new, and full_build (over the window from the first day missing) otherwise.

The run is one run of the named job (a part of it with --select), created from the code location that
workspace.yaml names, as the daemon creates the runs of the schedules and sensors, and launched by the
instance: queued for the daemon when one is running (`stockyard ui`), else launched at once by the instance's
run launcher (no queue needs a daemon to start just for it). Its partitioned assets cover the trading days
from --start to --end (default: every partition whose session has closed), given as the run's partition range
tags; its other assets run once, after their parents. Its steps are printed as they finish; SIGINT or SIGTERM
cancels it. Exit status 0 when the run succeeded, 1 when it failed or was canceled.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import dagster as dg
from dagster import DagsterEventType, DagsterRun, DagsterRunStatus, EventLogEntry
from dagster._core.definitions.selector import JobSubsetSelector
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from dagster._core.workspace.context import BaseWorkspaceRequestContext, WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

from orchestration.automation import TRIGGER_TAG
from orchestration.definitions import build_definitions
from orchestration.executors import in_process_run_config
from orchestration.ingestion.assets import INGESTION_GROUP
from orchestration.jobs import DAILY_REFRESH, FULL_BUILD
from orchestration.partitions import closed_partition_keys
from stockyard.settings import PROJECT_ROOT


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


# The code location as workspace.yaml names it, which `stockyard ui` (webserver and daemon) loads too.
WORKSPACE_FILE = PROJECT_ROOT / "workspace.yaml"
LOCATION_NAME = "stockyard"
# Whose launch a run is, like the schedules' and sensors' runs say theirs (orchestration.automation).
TRIGGER = "stockyard"
# A daemon that has beaten within this long is taken to be running (it beats every 30 s).
DAEMON_ALIVE_SECONDS = 75.0
FOLLOWED = {
    DagsterEventType.STEP_SUCCESS,
    DagsterEventType.STEP_FAILURE,
    DagsterEventType.STEP_SKIPPED,
    DagsterEventType.ASSET_CHECK_EVALUATION,
    DagsterEventType.RUN_FAILURE,
    DagsterEventType.RUN_CANCELED,
}


def open_code_location(instance: dg.DagsterInstance) -> WorkspaceProcessContext:
    """The workspace of workspace.yaml, its code location's server started (and to be exited)."""
    return WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(WORKSPACE_FILE)]))


def launch(
    plan: Launch,
    instance: dg.DagsterInstance,
    workspace: WorkspaceProcessContext,
    *,
    echo: Callable[[str], None] = print,
    wait_for_daemon: float = 0.0,
) -> DagsterRun:
    """Create `plan`'s run from the code location, as the daemon creates a schedule's, and have it run:
    through the run queue when a daemon is there to launch it (`stockyard ui` runs one), else launched at
    once with the instance's run launcher. Follow it to its end, echoing its steps; a stop (Ctrl-C, a
    signal's exception) meanwhile cancels it. The run, finished. `wait_for_daemon` seconds are given to a
    daemon being started to beat first."""
    context = workspace.create_request_context()
    run = create_run(plan, instance, context)
    deadline = time.monotonic() + wait_for_daemon
    while not (queued := daemon_running(instance)) and time.monotonic() < deadline:
        time.sleep(1)
    echo(
        f"run {run.run_id} of {plan.job}: "
        + ("queued, the daemon launches it" if queued else "launched (no daemon running)")
    )
    if queued:
        instance.submit_run(run.run_id, context)
    else:
        instance.launch_run(run.run_id, context)

    def launch_unless_dequeued() -> None:
        # A daemon that stopped just before (its last beat still recent) would leave the run queued.
        if not daemon_running(instance):
            echo("the daemon stopped beating: launching the run without it")
            instance.launch_run(run.run_id, context)

    return follow(instance, run.run_id, echo=echo, while_queued=launch_unless_dequeued)


def create_run(
    plan: Launch, instance: dg.DagsterInstance, context: BaseWorkspaceRequestContext
) -> DagsterRun:
    location = context.get_code_location(LOCATION_NAME)
    (repository,) = location.get_repositories().values()
    remote_job = location.get_job(
        JobSubsetSelector(
            location_name=LOCATION_NAME,
            repository_name=repository.name,
            job_name=plan.job,
            op_selection=None,
            asset_selection=plan.asset_keys,
        )
    )
    execution_plan = location.get_execution_plan(
        remote_job, plan.run_config, step_keys_to_execute=None, known_state=None, instance=instance
    )
    return instance.create_run(
        job_name=plan.job,
        run_id=None,
        run_config=plan.run_config,
        resolved_op_selection=remote_job.resolved_op_selection,
        step_keys_to_execute=None,
        op_selection=None,
        status=DagsterRunStatus.NOT_STARTED,
        root_run_id=None,
        parent_run_id=None,
        tags={**remote_job.run_tags, **plan.tags, TRIGGER_TAG: TRIGGER},
        job_snapshot=remote_job.job_snapshot,
        execution_plan_snapshot=execution_plan.execution_plan_snapshot,
        parent_job_snapshot=remote_job.parent_job_snapshot,
        remote_job_origin=remote_job.get_remote_origin(),
        job_code_origin=remote_job.get_python_origin(),
        asset_selection=frozenset(plan.asset_keys),
        asset_check_selection=None,
        asset_graph=repository.asset_graph,
    )


def daemon_running(instance: dg.DagsterInstance) -> bool:
    """Whether a daemon dequeues the instance's run queue (it beat lately)."""
    heartbeats = instance.get_daemon_heartbeats()
    beat = heartbeats.get(QueuedRunCoordinatorDaemon.daemon_type())
    return beat is not None and time.time() - beat.timestamp < DAEMON_ALIVE_SECONDS


def follow(
    instance: dg.DagsterInstance,
    run_id: str,
    *,
    echo: Callable[[str], None],
    while_queued: Callable[[], None] = lambda: None,
    poll_seconds: float = 0.5,
) -> DagsterRun:
    """Echo the run's steps as they finish until it ends, calling `while_queued` at each look while it waits
    in the queue; cancel it should this be stopped meanwhile."""
    cursor: str | None = None
    try:
        while True:
            run = instance.get_run_by_id(run_id)
            assert run is not None
            records = instance.get_records_for_run(run_id, cursor=cursor, of_type=FOLLOWED)
            cursor = records.cursor
            for record in records.records:
                echo(describe_event(record.event_log_entry))
            if run.is_finished and not records.has_more:
                return run
            if run.status == DagsterRunStatus.QUEUED:
                while_queued()
            time.sleep(poll_seconds)
    finally:
        run = instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            echo(f"stopping run {run_id}")
            instance.run_coordinator.cancel_run(run_id)


def describe_event(entry: EventLogEntry) -> str:
    event = entry.dagster_event
    assert event is not None
    data = event.event_specific_data
    if event.event_type == DagsterEventType.STEP_SUCCESS:
        return f"  {event.step_key}: done in {data.duration_ms / 1000:.1f} s"  # type: ignore[union-attr]
    if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
        check = data.asset_check_key  # type: ignore[union-attr]
        outcome = "passed" if data.passed else f"did not pass ({data.severity.value})"  # type: ignore[union-attr]
        return f"    check {check.name} on {check.asset_key.to_user_string()}: {outcome}"
    if event.event_type == DagsterEventType.STEP_SKIPPED:
        return f"  {event.step_key}: skipped"
    if event.event_type == DagsterEventType.STEP_FAILURE:
        error = data.error  # type: ignore[union-attr]
        # Dagster wraps what the step raised: its message says which op, the cause what went wrong.
        while error is not None and error.cause is not None:
            error = error.cause
        return f"  {event.step_key}: failed: {error.message.strip() if error else event.message}"
    return (
        f"run {'failed' if event.event_type == DagsterEventType.RUN_FAILURE else 'canceled'}: {event.message}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestration.launch", description=__doc__)
    parser.add_argument("--job", default=FULL_BUILD)
    parser.add_argument("--missing", action="store_true", help="only what the instance lacks (see above)")
    parser.add_argument("--select", default=None, help="Dagster asset selection within the job")
    parser.add_argument("--start", type=date.fromisoformat, default=None)
    parser.add_argument("--end", type=date.fromisoformat, default=None)
    parser.add_argument(
        "--wait-for-daemon",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long for a daemon to start (one being started) before launching without one",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    with ExitStack() as stack:
        instance = stack.enter_context(dg.DagsterInstance.get())
        # The code location's server starts (seconds: it imports the definitions) while this process plans;
        # not for --missing, which usually finds nothing to do.
        starting = None
        if not args.missing:
            starting = stack.enter_context(ThreadPoolExecutor(max_workers=1)).submit(
                open_code_location, instance
            )
            stack.callback(lambda: starting.result().__exit__(None, None, None))
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
        workspace = starting.result() if starting else stack.enter_context(open_code_location(instance))
        run = launch(
            plan,
            instance,
            workspace,
            echo=lambda line: print(line, flush=True),
            wait_for_daemon=args.wait_for_daemon,
        )
    outcome = run.status.value.lower()
    print(f"run {run.run_id} of {plan.job} {outcome} in {time.monotonic() - started:.0f} s", flush=True)
    return 0 if run.status == DagsterRunStatus.SUCCESS else 1


if __name__ == "__main__":
    sys.exit(main())
