"""`stockyard`: the one command a user learns."""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import psycopg
import typer

from cli import processes
from cli.bench import bench_app
from cli.services import EmbeddedServices, ensure_services, port_open
from cli.users import users_app
from stockyard.endpoints import resolve_endpoints
from stockyard.settings import PROJECT_ROOT, get_services_settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ml.config import MLSettings, TrackingConfig

app = typer.Typer(
    help="Stockyard: equity research and stock recommendations on the modern data stack.",
    no_args_is_help=True,
)
services_app = typer.Typer(help="Start, stop and inspect PostgreSQL and Redis.", no_args_is_help=True)
app.add_typer(services_app, name="services")
db_app = typer.Typer(help="The application's tables in the warehouse database.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(bench_app, name="bench")
app.add_typer(users_app, name="users")

DAGSTER_HOME = PROJECT_ROOT / "dagster_home"
# What MLflow does unasked in every process that logs or serves: phone home, and draw progress bars into logs.
MLFLOW_DEFAULTS = {"MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
# Dagster writes the events it reports in batches (its run planning, a window step's per-day
# materializations) in one statement each rather than one per event: see orchestration/event_log.py.
DAGSTER_DEFAULTS = {"DAGSTER_EVENT_BATCH_SIZE": "1000"}
# How long `stockyard run` waits for the daemon of the UI it starts to take runs from the queue before it
# launches its run itself (a loaded machine takes a while to start the UI's processes).
DAEMON_START_SECONDS = 120.0


@services_app.command("up")
def services_up() -> None:
    """Start the embedded PostgreSQL and Redis unless STOCKYARD_SERVICES_DATABASE_URL / _REDIS_URL point
    elsewhere."""
    endpoints = ensure_services(get_services_settings())
    _print_endpoints(started=endpoints.embedded)


@services_app.command("down")
def services_down() -> None:
    """Stop the embedded services (their data stays under the state folder)."""
    settings = get_services_settings()
    EmbeddedServices(settings.state_dir).down()
    typer.echo(
        "embedded services stopped"
        + (
            ""
            if resolve_endpoints(settings).embedded
            else " (none were in use: STOCKYARD_SERVICES_DATABASE_URL and _REDIS_URL are set)"
        )
    )


@services_app.command("status")
def services_status() -> None:
    """Print what runs where."""
    _print_endpoints(started=False)


def _print_endpoints(*, started: bool) -> None:
    settings = get_services_settings()
    endpoints = resolve_endpoints(settings)
    running = EmbeddedServices(settings.state_dir).status()
    rows = [
        ("postgres", endpoints.database_url, settings.database_url is None, running["postgres"]),
        ("redis", endpoints.redis_url, settings.redis_url is None, running["redis"]),
    ]
    for name, url, embedded, up in rows:
        where = f"embedded, data in {settings.state_dir / name}" if embedded else "configured"
        state = ("running" if up else "stopped") if embedded else "external"
        typer.echo(f"{name:<9} {state:<8} {url}  ({where})")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create the raw, products and app tables, or migrate them to this version (safe to repeat)."""
    upgrade_database(ensure_services(get_services_settings()).database_url)


def upgrade_database(database_url: str) -> None:
    from stockyard.db.migrate import upgrade

    migration = upgrade(database_url)
    change = (
        "up to date"
        if migration.after == migration.before
        else f"upgraded from {migration.before or 'no tables'}"
    )
    typer.echo(f"warehouse tables at revision {migration.after} ({change})")


def dagster_environment() -> dict[str, str]:
    """The environment Dagster, dbt and MLflow child processes need: service URLs, DAGSTER_HOME, the venv's
    bin, and Dagster's and MLflow's defaults (unless set otherwise)."""
    endpoints = ensure_services(get_services_settings())
    bin_dir = str(Path(sys.executable).parent)
    return {
        **MLFLOW_DEFAULTS,
        **DAGSTER_DEFAULTS,
        **os.environ,
        **endpoints.environment(),
        "DAGSTER_HOME": str(DAGSTER_HOME),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }


@app.command()
def materialize(
    select: Annotated[
        str, typer.Option(help="Dagster asset selection, e.g. 'group:ingestion' or 'key:raw_*'.")
    ] = "*",
    start: Annotated[
        str | None, typer.Option(help="First trading day of partitioned assets (YYYY-MM-DD).")
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="Last trading day of partitioned assets (YYYY-MM-DD).")
    ] = None,
) -> None:
    """Materialize assets as one run of the full_build job through the Dagster instance, so the run shows in
    the Dagster UI like the runs the schedules launch.

    The partitioned assets cover the trading days from --start to --end (default: all that have closed) in
    that one run; the others run once, each after its parents.
    """
    with processes.stop_signals_raise():
        _materialize(select, start=_parse_day(start, "--start"), end=_parse_day(end, "--end"))


def _materialize(select: str, *, start: date | None, end: date | None) -> None:
    from orchestration.jobs import FULL_BUILD

    command = ["--job", FULL_BUILD]
    if select != "*":
        command += ["--select", select]
    command += [f"--{name}={day.isoformat()}" for name, day in (("start", start), ("end", end)) if day]
    _launch(command)


def _launch(arguments: list[str]) -> None:
    """`python -m orchestration.launch <arguments>` in this process (it imports what the code location
    does: another interpreter would import it all again), with the services' environment, on an upgraded
    warehouse. A stop signal meanwhile cancels the run."""
    os.environ.update(dagster_environment())
    upgrade_database(resolve_endpoints(get_services_settings()).database_url)
    # The code server and the run start where `stockyard ui` starts them: in the project.
    os.chdir(PROJECT_ROOT)
    from orchestration.launch import main as launch_main

    status = launch_main(arguments)
    if status == 2:
        # The launcher said what the selection or window lacks.
        raise typer.Exit(2)
    if status != 0:
        typer.echo("the run failed; see it in the Dagster UI (`stockyard ui`)", err=True)
        raise typer.Exit(1)


@app.command()
def run(
    ui: Annotated[
        bool, typer.Option(help="Keep the API and the Dagster and MLflow UIs up after materializing.")
    ] = True,
    build: Annotated[
        bool,
        typer.Option(
            "--materialize/--no-materialize",
            help="Materialize what is missing first (nothing when every asset is built up to the last "
            "closed trading day); --no-materialize serves what an earlier run built.",
        ),
    ] = True,
    port: Annotated[int, typer.Option(help="Port of the Dagster UI.")] = 3000,
) -> None:
    """The main job: start the services, build what is missing (full_build over every closed trading day on
    a cold start, daily_refresh over the days that are new, nothing when nothing is), and serve the API, the
    Dagster UI (with the daemon, which runs the schedules and sensors) and the MLflow UI until Ctrl-C or
    SIGTERM, which stop them all. With the UI, it comes up first and its daemon launches the run from the
    run queue, as it launches a schedule's; when the run fails, the UI shows why."""
    with processes.stop_signals_raise():
        services_up()
        if not ui:
            if build:
                _launch(["--missing"])
            return
        env = dagster_environment()
        with (
            # With a build, the families' runs links come after it (on a cold start, the runs come with it).
            _mlflow_ui_beside(env, runs_links=not build),
            api_beside(env),
            processes.running(_dagster_ui_command(port), env=env, cwd=PROJECT_ROOT) as dagster_ui,
        ):
            typer.echo(f"Dagster UI on http://127.0.0.1:{port}")
            if build:
                from ml.config import TrackingConfig, get_ml_settings

                try:
                    _launch(["--missing", f"--wait-for-daemon={DAEMON_START_SECONDS:g}"])
                    _echo_family_runs(TrackingConfig.from_settings(ml=get_ml_settings()))
                except typer.Exit:
                    typer.echo("materializing failed: the Dagster UI shows which step and why", err=True)
            processes.wait_for_exit(dagster_ui)
        raise typer.Exit(dagster_ui.returncode)


@app.command("ui")
def serve_ui(port: Annotated[int, typer.Option(help="Port of the Dagster UI.")] = 3000) -> None:
    """Open the Dagster UI (webserver and daemon) on the project's instance."""
    with processes.stop_signals_raise():
        _serve_ui(port)


def _serve_ui(port: int) -> None:
    env = dagster_environment()
    typer.echo(f"Dagster UI on http://127.0.0.1:{port}")
    raise typer.Exit(processes.run(_dagster_ui_command(port), env=env, cwd=PROJECT_ROOT))


def _dagster_ui_command(port: int) -> list[str]:
    """`dagster dev`: the webserver, the daemon and the code server of workspace.yaml."""
    workspace = str(PROJECT_ROOT / "workspace.yaml")
    return [sys.executable, "-m", "dagster", "dev", "-w", workspace, "-h", "127.0.0.1", "-p", str(port)]


@app.command("mlflow")
def serve_mlflow(
    port: Annotated[
        int | None, typer.Option(help="Port of the MLflow UI (default STOCKYARD_ML_UI_PORT).")
    ] = None,
) -> None:
    """Open the MLflow UI on the project's tracking store: the runs, metrics and artifacts of every training,
    and the registered models with their champion and challenger."""
    with processes.stop_signals_raise():
        _serve_mlflow(port)


def _serve_mlflow(port: int | None) -> None:
    from ml.config import TrackingConfig, get_ml_settings

    env = dagster_environment()
    ml = get_ml_settings() if port is None else get_ml_settings().model_copy(update={"ui_port": port})
    tracking = TrackingConfig.from_settings(ml=ml)
    if tracking.is_remote:
        typer.echo(f"MLflow tracking server {tracking.tracking_uri} serves its own UI: open it")
        raise typer.Exit(0)
    command = _mlflow_ui_command(tracking, ml)
    _echo_mlflow_ui(tracking)
    raise typer.Exit(processes.run(command, env=env, cwd=PROJECT_ROOT))


def _mlflow_ui_command(tracking: TrackingConfig, ml: MLSettings) -> list[str]:
    from ml.tracking import ensure_tracking_database, ui_command

    ensure_tracking_database(tracking.tracking_uri)
    return ui_command(tracking, host=ml.ui_host, port=ml.ui_port)


@contextmanager
def _mlflow_ui_beside(env: dict[str, str], *, runs_links: bool = True) -> Iterator[None]:
    """The MLflow UI in the background for the duration, unless a tracking server serves its own or
    something (an MLflow UI started earlier) already listens on its port."""
    from ml.config import TrackingConfig, get_ml_settings

    ml = get_ml_settings()
    tracking = TrackingConfig.from_settings(ml=ml)
    if tracking.is_remote or port_open(ml.ui_port):
        _echo_mlflow_ui(tracking, runs_links=runs_links)
        yield
        return
    command = _mlflow_ui_command(tracking, ml)
    # Before the server starts: on a new store, the client and the server would both create MLflow's tables.
    _echo_mlflow_ui(tracking, runs_links=runs_links)
    with processes.running(command, env=env, cwd=PROJECT_ROOT):
        yield


def _echo_mlflow_ui(tracking: TrackingConfig, *, runs_links: bool = True) -> None:
    """Where the MLflow UI is and, for the project's own store, the runs table of each family there: the
    links open it on its model-training side, in the project's view (the UI's home opens on GenAI)."""
    typer.echo(f"MLflow UI on {tracking.ui_url}")
    if runs_links:
        _echo_family_runs(tracking)


def _echo_family_runs(tracking: TrackingConfig) -> None:
    if tracking.is_remote:
        return
    from mlflow import MlflowClient

    from ml.tracking import family_runs_urls

    client = MlflowClient(tracking_uri=tracking.tracking_uri, registry_uri=tracking.tracking_uri)
    for name, url in family_runs_urls(client, tracking).items():
        typer.echo(f"  {name}: {url}")


@contextmanager
def api_beside(env: dict[str, str]) -> Iterator[None]:
    """`stockyard serve` in the background for the duration, unless something already listens on its port."""
    from serving.settings import get_api_settings

    settings = get_api_settings()
    docs = f"http://{settings.host}:{settings.port}/docs"
    if port_open(settings.port):
        typer.echo(f"API on {docs} (already running)")
        yield
        return
    with processes.running([sys.executable, "-m", "cli.main", "serve"], env=env, cwd=PROJECT_ROOT):
        typer.echo(f"API on {docs}")
        yield


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface to listen on [default: STOCKYARD_API_HOST]")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port [default: STOCKYARD_API_PORT]")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes [default: STOCKYARD_API_WORKERS]")
    ] = None,
) -> None:
    """Serve the API (uvicorn) on the warehouse: /api/v1, its docs at /docs, Prometheus metrics at /metrics.

    The API connects as a read-only role, set up here first (stockyard.api_role) unless
    STOCKYARD_API_DATABASE_URL names the database and user to use.

    SIGTERM or Ctrl-C stops it gracefully: requests in flight finish, then the pools close.
    """
    # Imported here: the `serve` extra is only needed by this command.
    import tempfile

    import uvicorn
    from sqlalchemy.exc import DBAPIError

    from serving.observability import log_config
    from serving.settings import get_api_settings
    from stockyard.api_role import ensure_api_role

    # The workers read the same services from the environment.
    os.environ.update(ensure_services(get_services_settings()).environment())
    get_services_settings.cache_clear()
    settings = get_api_settings()
    if settings.role_owner_url is not None:
        try:
            # The accounts' tables (app schema) must be there before the role is granted them.
            upgrade_database(settings.role_owner_url)
            ensure_api_role(
                settings.role_owner_url,
                role=settings.db_role,
                password=settings.db_password.get_secret_value(),
                statement_timeout_ms=settings.db_statement_timeout_ms,
            )
        except (psycopg.Error, DBAPIError) as error:
            typer.echo(
                f"could not set up the API's read-only role {settings.db_role!r} as the user of "
                "STOCKYARD_SERVICES_DATABASE_URL (it needs to create roles and own the warehouse's schemas): "
                f"{error}\n"
                "Set STOCKYARD_API_DATABASE_URL to connect the API as an existing user instead.",
                err=True,
            )
            raise typer.Exit(1) from None
    workers = workers or settings.workers
    with tempfile.TemporaryDirectory(prefix="stockyard-api-metrics-") as metrics_dir:
        if workers > 1:
            # Each worker writes its metrics here; /metrics sums them (prometheus-client multiprocess mode).
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        uvicorn.run(
            "cli.main:create_worker_app" if workers > 1 else "serving.app:create_app",
            factory=True,
            host=host or settings.host,
            port=port or settings.port,
            workers=workers,
            log_config=log_config(settings.log_level),
            # httptools with a ceiling on request heads, named so that each worker process imports it.
            http="serving.protocol:BoundedHeadHttpToolsProtocol",
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=settings.graceful_shutdown_seconds,
            proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
        )


def create_worker_app() -> FastAPI:
    """The API in one of `serve --workers N`'s worker processes, which ends with the server should it die
    without stopping them."""
    import multiprocessing

    from serving.app import create_app

    server = multiprocessing.parent_process()
    if server is not None and server.pid is not None:
        processes.die_with(server.pid)
    return create_app()


def _parse_day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date in YYYY-MM-DD form", param_hint=option) from None


def main() -> None:
    """The `stockyard` command. SIGTERM or SIGHUP stops a command that runs servers as Ctrl-C does, them
    included, and it exits with 128 + the signal's number.

    It exits without tearing the interpreter down once the exit handlers have run: freeing what a command
    imported (Dagster, dbt, Great Expectations) took 1 to 3 seconds after its work was done."""
    try:
        app()
        status = 0
    except processes.Stopped as stopped:
        status = 128 + stopped.signal_number
    except SystemExit as exit_:
        status = _exit_status(exit_.code)
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _exit_status(code: object) -> int:
    """The status `sys.exit(code)` exits with."""
    if code is None or isinstance(code, int):
        return code or 0
    print(code, file=sys.stderr)
    return 1


if __name__ == "__main__":
    main()
