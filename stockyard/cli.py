"""`stockyard`: the one command a user learns."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from stockyard.services import EmbeddedServices, ensure_services, resolve_endpoints
from stockyard.settings import PROJECT_ROOT, get_settings

app = typer.Typer(
    help="Stockyard: equity research and stock recommendations on the modern data stack.",
    no_args_is_help=True,
)
services_app = typer.Typer(help="Start, stop and inspect PostgreSQL and Redis.", no_args_is_help=True)
app.add_typer(services_app, name="services")

DAGSTER_HOME = PROJECT_ROOT / "dagster_home"


@services_app.command("up")
def services_up() -> None:
    """Start the embedded PostgreSQL and Redis unless DATABASE_URL / REDIS_URL point elsewhere."""
    endpoints = ensure_services(get_settings())
    _print_endpoints(started=endpoints.embedded)


@services_app.command("down")
def services_down() -> None:
    """Stop the embedded services (their data stays under the state folder)."""
    settings = get_settings()
    EmbeddedServices(settings.state_dir).down()
    typer.echo(
        "embedded services stopped"
        + (
            ""
            if resolve_endpoints(settings).embedded
            else " (none were in use: DATABASE_URL and REDIS_URL are set)"
        )
    )


@services_app.command("status")
def services_status() -> None:
    """Print what runs where."""
    _print_endpoints(started=False)


def _print_endpoints(*, started: bool) -> None:
    settings = get_settings()
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


def dagster_environment() -> dict[str, str]:
    """The environment Dagster and dbt child processes need: service URLs, DAGSTER_HOME, the venv's bin."""
    endpoints = ensure_services(get_settings())
    bin_dir = str(Path(sys.executable).parent)
    return {
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
    """Materialize assets through the Dagster instance, so the runs show in the Dagster UI.

    Partitioned and unpartitioned assets cannot share a run, so the selection runs as a few stages in
    dependency order; each partitioned stage is one run over the whole window.
    """
    from orchestration.stages import plan_stages

    env = dagster_environment()
    os.environ.update(env)
    get_settings.cache_clear()
    stages = plan_stages(select, start=_parse_day(start, "--start"), end=_parse_day(end, "--end"))
    if not stages:
        typer.echo(f"nothing matches the selection {select!r}", err=True)
        raise typer.Exit(2)
    for number, stage in enumerate(stages, start=1):
        window = f" for {stage.partition_range}" if stage.partition_range else ""
        typer.echo(f"[{number}/{len(stages)}] materializing {len(stage.asset_keys)} asset(s){window}")
        command = [
            sys.executable,
            "-m",
            "dagster",
            "asset",
            "materialize",
            "-m",
            "orchestration.definitions",
            "--select",
            ",".join(stage.asset_keys),
        ]
        if stage.partition_range:
            command += ["--partition-range", stage.partition_range]
        if subprocess.run(command, env=env, cwd=PROJECT_ROOT, check=False).returncode != 0:
            typer.echo(f"stage {number} failed; see the run in the Dagster UI (`stockyard ui`)", err=True)
            raise typer.Exit(1)


@app.command()
def run(
    ui: Annotated[bool, typer.Option(help="Keep the Dagster UI up after materializing.")] = True,
    port: Annotated[int, typer.Option(help="Port of the Dagster UI.")] = 3000,
) -> None:
    """The main job: start the services, materialize every asset, then serve the UI until Ctrl-C."""
    services_up()
    materialize(select="*", start=None, end=None)
    if ui:
        serve_ui(port=port)


@app.command("ui")
def serve_ui(port: Annotated[int, typer.Option(help="Port of the Dagster UI.")] = 3000) -> None:
    """Open the Dagster UI (webserver and daemon) on the project's instance."""
    env = dagster_environment()
    typer.echo(f"Dagster UI on http://127.0.0.1:{port}")
    command = [
        sys.executable,
        "-m",
        "dagster",
        "dev",
        "-w",
        str(PROJECT_ROOT / "workspace.yaml"),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    raise typer.Exit(subprocess.run(command, env=env, cwd=PROJECT_ROOT, check=False).returncode)


def _parse_day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date in YYYY-MM-DD form", param_hint=option) from None


if __name__ == "__main__":
    app()
