"""Run a job of the code location through the Dagster instance (DAGSTER_HOME), as `stockyard run` and
`stockyard materialize` do:
`python -m orchestration.launch [--job full_build] [--select SEL] [--start D --end D] [--missing]`.

With --missing (what `stockyard run` does), only what the instance lacks runs: nothing when every asset is
materialized up to the last closed trading day, the daily_refresh job over the days after the last one built
when only days are new, and full_build (over the window from the first day missing) otherwise.

The run is one run of the named job (a part of it with --select), of the code location that workspace.yaml
names (the origin the daemon gives the runs of the schedules and sensors), started through the instance:
queued for the daemon when one is running (`stockyard ui`), else started at once (no queue needs a daemon to
start just for it). Under Dagster's default run launcher, which would start a code server and a run process
on this machine, each loading the definitions again, the run's process is forked from this one, which has
them loaded; another run launcher (Kubernetes, say) is asked to launch it. Its partitioned assets cover the
trading days from --start to --end (default: every partition whose session has closed), given as the run's
partition range tags; its other assets run once, after their parents. Its steps are printed as they finish;
SIGINT or SIGTERM cancels it. Exit status 0 when the run succeeded, 1 when it failed or was canceled.
"""

from __future__ import annotations

import argparse
import importlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Any

import dagster as dg
from dagster import DagsterEvent, DagsterEventType, DagsterRun, DagsterRunStatus
from dagster._core.definitions.asset_selection import DagsterInvalidAssetSelectionError
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.events import EngineEventData
from dagster._core.launcher import DefaultRunLauncher
from dagster._core.remote_origin import CodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon
from dagster._grpc.impl import core_execute_run

from orchestration.automation import TRIGGER_TAG
from orchestration.executors import PRELOADED_MODULES, in_process_run_config
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


# The command prints each step as it ends (describe_event): Dagster's console logger, whose output shares the
# terminal, adds what the assets log rather than a line per engine event (one per day and asset of a window).
CONSOLE_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
# The code location as workspace.yaml names it, which `stockyard ui` (webserver and daemon) loads too.
WORKSPACE_FILE = PROJECT_ROOT / "workspace.yaml"
LOCATION_NAME = "stockyard"


class CodeLocation:
    """The code location of workspace.yaml, loaded in this process: its origin (what the UI and the daemon
    know it by) and its definitions, loaded once."""

    def __init__(self) -> None:
        (origin,) = WorkspaceFileTarget(paths=[str(WORKSPACE_FILE)]).create_origins()
        target = origin.loadable_target_origin
        assert origin.location_name == LOCATION_NAME and target.module_name is not None
        self.origin: CodeLocationOrigin = origin
        # From the folder of workspace.yaml, where `stockyard ui` runs the webserver and the daemon.
        folder = target.working_directory or str(WORKSPACE_FILE.parent)
        self.repository = ReconstructableRepository.for_module(
            target.module_name, target.attribute or "defs", folder
        )

    @cached_property
    def definitions(self) -> dg.RepositoryDefinition:
        return self.repository.get_definition()

    def job_origin(self, job: str) -> RemoteJobOrigin:
        return RemoteJobOrigin(RemoteRepositoryOrigin(self.origin, self.definitions.name), job)


def plan_launch(
    job: str,
    selection: str | None = None,
    *,
    start: date | None = None,
    end: date | None = None,
    location: CodeLocation | None = None,
) -> Launch:
    """What a run of `job` (of `selection` within it) covers. Raises ValueError on a selection or window that
    names nothing."""
    definitions = (location or CodeLocation()).definitions
    graph = definitions.asset_graph
    in_job = definitions.get_job(job).asset_layer.executable_asset_keys
    if selection is None:
        keys = set(in_job)
    else:
        try:
            with warnings.catch_warnings():
                # Dagster warns that what it parses `group:` into uses a beta parameter: not for the user.
                warnings.simplefilter("ignore", dg.BetaWarning)
                parsed = dg.AssetSelection.from_string(selection)
            # Assets computed together (a multi-asset) can only run together.
            selected = parsed.required_multi_asset_neighbors().resolve(graph)
        except (DagsterInvalidAssetSelectionError, dg.DagsterInvalidSubsetError) as error:
            raise ValueError(f"the selection {selection!r} does not resolve: {error}") from None
        keys = set(selected) & set(in_job)
    if not keys:
        raise ValueError(f"nothing in job {job} matches the selection {selection!r}")
    ordered = [key for key in graph.toposorted_asset_keys if key in keys]
    # Ingestion's steps take seconds: a process per step, and the server they fork from, would cost more.
    in_process = all(graph.get(key).group_name == INGESTION_GROUP for key in ordered)
    run_config = (in_process_run_config() if in_process else {}) | CONSOLE_RUN_CONFIG
    partitioned = [key for key in ordered if graph.get(key).is_partitioned]
    if not partitioned:
        return Launch(job, ordered, None, run_config)
    partitions_def = graph.get(partitioned[0]).partitions_def
    assert partitions_def is not None
    return Launch(job, ordered, _partition_range(partitions_def, start, end), run_config)


def plan_missing(instance: dg.DagsterInstance, location: CodeLocation | None = None) -> Launch | None:
    """What the instance lacks, as a launch (None: nothing)."""
    location = location or CodeLocation()
    graph = location.definitions.asset_graph
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
    job = FULL_BUILD if never else DAILY_REFRESH
    return plan_launch(job, start=date.fromisoformat(first), location=location)


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
    location: CodeLocation,
    *,
    echo: Callable[[str], None] = print,
    wait_for_daemon: float = 0.0,
) -> DagsterRun:
    """Create `plan`'s run of the code location, as the daemon creates a schedule's, and have it run:
    through the run queue when a daemon is there to launch it (`stockyard ui` runs one), else at once, in a
    process forked from this one under Dagster's default run launcher, else by the instance's run launcher.
    Follow it to its end, echoing its steps; a stop (Ctrl-C, a signal's exception) meanwhile cancels it.
    The run, finished. `wait_for_daemon` seconds are given to a daemon being started to beat first."""
    here = isinstance(instance.run_launcher, DefaultRunLauncher)
    # Forked before the run is created when it will run here, so that its imports overlap with that.
    worker = (
        RunWorker(location, instance)
        if here and not wait_for_daemon and not daemon_running(instance)
        else None
    )
    try:
        run = create_run(plan, instance, location)
        deadline = time.monotonic() + wait_for_daemon
        while not (queued := daemon_running(instance)) and time.monotonic() < deadline:
            time.sleep(1)
        if not queued and here:
            echo(f"run {run.run_id} of {plan.job}: started here (no daemon running)")
            worker = worker or RunWorker(location, instance)
            return follow(instance, run.run_id, echo=echo, worker=worker.start(run, instance))
    finally:
        if worker is not None:
            worker.discard()
    with open_code_location(instance) as workspace:
        context = workspace.create_request_context()
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


def create_run(plan: Launch, instance: dg.DagsterInstance, location: CodeLocation) -> DagsterRun:
    job = location.definitions.get_job(plan.job)
    return instance.create_run_for_job(
        job_def=job,
        run_config=plan.run_config,
        status=DagsterRunStatus.NOT_STARTED,
        tags={**job.run_tags, **plan.tags, TRIGGER_TAG: TRIGGER},
        asset_selection=set(plan.asset_keys),
        remote_job_origin=location.job_origin(plan.job),
        job_code_origin=location.repository.get_reconstructable_job(plan.job).get_python_origin(),
    )


class RunWorker:
    """The process executing a run, forked from this one, which has the code location loaded: what Dagster's
    default run launcher would start, but without loading the definitions once more. It is forked before the
    run exists and imports what the steps import (Great Expectations takes seconds) while this process
    creates the run; then it is given the run to execute, or let go."""

    # How long a canceled run's process gets to end it (its steps' processes stop first) before it is killed.
    STOP_SECONDS = 60.0

    def __init__(self, location: CodeLocation, instance: dg.DagsterInstance) -> None:
        context = multiprocessing.get_context("fork")
        received, self._run_ids = context.Pipe(duplex=False)
        self.process = context.Process(
            target=_execute_run,
            args=(location.repository, instance.get_ref(), received, self._run_ids),
            name="dagster-run",
        )
        self.process.start()
        received.close()
        self._started = False
        self._interrupted = False

    def start(self, run: DagsterRun, instance: dg.DagsterInstance) -> RunWorker:
        """Report the run starting, as the instance does for a run it hands its run launcher, and have the
        process execute it."""
        instance.report_dagster_event(
            DagsterEvent(DagsterEventType.RUN_STARTING.value, job_name=run.job_name), run_id=run.run_id
        )
        self._started = True
        try:
            self._run_ids.send(run.run_id)
        except OSError:
            # The process ended before it was given the run (its imports failed, and it said why).
            self.process.join()
            self._fail_if_unfinished(instance, run.run_id)
        self._run_ids.close()
        return self

    def discard(self) -> None:
        """Stop the process if it was given no run (the run was queued, or not created)."""
        if not self._started and self.process.is_alive():
            self._run_ids.close()
            self.process.kill()
            self.process.join()

    def watch(self, instance: dg.DagsterInstance, run: DagsterRun) -> None:
        """Interrupt the process of a run being canceled (from the UI), which then ends it as canceled; fail
        the run if its process ended without ending it."""
        if run.status == DagsterRunStatus.CANCELING:
            self.interrupt()
        elif not self.process.is_alive():
            self._fail_if_unfinished(instance, run.run_id)

    def cancel(self, instance: dg.DagsterInstance, run: DagsterRun) -> None:
        """Mark the run canceling and stop its process, which ends it as canceled."""
        instance.report_run_canceling(run)
        self.interrupt()
        self.process.join(self.STOP_SECONDS)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self._fail_if_unfinished(instance, run.run_id)

    def interrupt(self) -> None:
        # Dagster takes SIGINT in a run's process as the request to stop (the UI's terminate sends it too),
        # once: another, while it stops its steps and records the cancellation, would cut that short.
        if not self._interrupted and self.process.pid is not None and self.process.is_alive():
            os.kill(self.process.pid, signal.SIGINT)
            self._interrupted = True

    def _fail_if_unfinished(self, instance: dg.DagsterInstance, run_id: str) -> None:
        run = instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            message = f"The run's process ended (exit code {self.process.exitcode}) before the run did."
            instance.report_run_failed(run, message)


def _execute_run(
    repository: ReconstructableRepository,
    instance_ref: Any,
    run_ids: multiprocessing.connection.Connection,
    sender: multiprocessing.connection.Connection,
) -> None:
    # Out of the terminal's process group: Ctrl-C reaches the command, which cancels the run (see follow),
    # and not this process at once, which would take it for an unexpected interruption.
    os.setsid()
    # This process's copy of the sending end would keep the pipe open after the command's closed.
    sender.close()
    for module in PRELOADED_MODULES:
        importlib.import_module(module)
    try:
        run_id = run_ids.recv()
    except EOFError:
        return
    with dg.DagsterInstance.from_ref(instance_ref) as instance:
        run = instance.get_run_by_id(run_id)
        assert run is not None
        instance.report_engine_event(
            f"Started process for run (pid: {os.getpid()}).", run, EngineEventData.in_process(os.getpid())
        )
        for _ in core_execute_run(repository.get_reconstructable_job(run.job_name), run, instance, True):
            pass


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
    worker: RunWorker | None = None,
    poll_seconds: float = 0.5,
) -> DagsterRun:
    """Echo the run's steps as they finish until it ends, calling `while_queued` at each look while it waits
    in the queue; cancel it should this be stopped meanwhile. `worker`: the process executing the run here,
    which is told to stop when the run is being canceled (from here or from the UI)."""
    cursor: str | None = None
    try:
        while True:
            run = instance.get_run_by_id(run_id)
            assert run is not None
            records = instance.get_records_for_run(run_id, cursor=cursor, of_type=FOLLOWED)
            cursor = records.cursor
            for record in records.records:
                event = record.event_log_entry.dagster_event
                assert event is not None
                echo(describe_event(event))
            if run.is_finished and not records.has_more:
                return run
            if run.status == DagsterRunStatus.QUEUED:
                while_queued()
            if worker is not None:
                worker.watch(instance, run)
            time.sleep(poll_seconds)
    finally:
        run = instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            echo(f"stopping run {run_id}")
            if worker is None:
                instance.run_coordinator.cancel_run(run_id)
            else:
                worker.cancel(instance, run)


def describe_event(event: DagsterEvent) -> str:
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
        location = CodeLocation()
        try:
            plan = (
                plan_missing(instance, location)
                if args.missing
                else plan_launch(args.job, args.select, start=args.start, end=args.end, location=location)
            )
        except ValueError as error:
            print(error, file=sys.stderr)
            return 2
        if plan is None:
            print("nothing new: every asset is materialized up to the last closed trading day", flush=True)
            return 0
        print(f"launching {plan.describe()}", flush=True)
        run = launch(
            plan,
            instance,
            location,
            echo=lambda line: print(line, flush=True),
            wait_for_daemon=args.wait_for_daemon,
        )
    outcome = run.status.value.lower()
    print(f"run {run.run_id} of {plan.job} {outcome} in {time.monotonic() - started:.0f} s", flush=True)
    return 0 if run.status == DagsterRunStatus.SUCCESS else 1


if __name__ == "__main__":
    sys.exit(main())
