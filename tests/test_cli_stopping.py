"""Stopping a `stockyard` command stops everything it started, as a process supervisor or a script stops it:
one signal to the command's process alone, not to a terminal's whole process group."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psutil
import pytest

from cli.services import port_open
from tests.support import throwaway_database, wait_until_ready
from tests.test_cli import STOCKYARD, free_port


@pytest.fixture
def stop_env(redis_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """An empty warehouse, and free ports for the MLflow UI and the API."""
    with throwaway_database() as database_url:
        api_port = free_port()
        yield {
            **os.environ,
            "STOCKYARD_SERVICES_DATABASE_URL": database_url,
            "STOCKYARD_SERVICES_REDIS_URL": redis_url,
            "STOCKYARD_SERVICES_STATE_DIR": str(tmp_path / "state"),
            "STOCKYARD_API_PORT": str(api_port),
            "STOCKYARD_API_CACHE_PREFIX": f"stockyard-test-stopping:{api_port}",
            "STOCKYARD_ML_UI_PORT": str(free_port()),
        }


def running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@contextmanager
def stockyard(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """`stockyard <args>` in a session of its own, so that only the test signals it; whatever of it is left
    on the way out is killed, so that a failure leaves no servers behind."""
    command = subprocess.Popen(
        [*STOCKYARD, *args], env=env, stdout=subprocess.DEVNULL, start_new_session=True
    )
    try:
        yield command
    finally:
        if command.poll() is None:
            for process in [psutil.Process(command.pid), *psutil.Process(command.pid).children(True)]:
                with suppress(psutil.NoSuchProcess):
                    process.kill()
        command.wait()


def stop_and_check(command: subprocess.Popen[bytes], ports: list[int], signal_number: int) -> None:
    """Send `signal_number` to `command` alone, then expect every process it started gone and `ports` closed
    within 60 s."""
    descendants = psutil.Process(command.pid).children(recursive=True)
    command.send_signal(signal_number)
    deadline = time.monotonic() + 60
    try:
        status = command.wait(timeout=60)
        while any(running(process) for process in descendants) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = [" ".join(process.cmdline()[:4]) for process in descendants if running(process)]
        open_ports = [port for port in ports if port_open(port)]
    finally:
        for process in descendants:
            if running(process):
                process.kill()
    assert (left, open_ports) == ([], []), "the command's children outlived it"
    assert status == (-signal.SIGKILL if signal_number == signal.SIGKILL else 128 + signal_number)


def test_ui_stops_the_webserver_daemon_and_code_servers_on_sigint(stop_env: dict[str, str]) -> None:
    port = free_port()
    with stockyard(["ui", "--port", str(port)], stop_env) as command:
        wait_until_ready(f"http://127.0.0.1:{port}/server_info", command, seconds=120)
        # The webserver answers once it has loaded the code location, so its code server runs.
        assert any(
            "code-server" in " ".join(child.cmdline()) for child in psutil.Process(command.pid).children(True)
        )
        stop_and_check(command, [port], signal.SIGINT)


def test_run_stops_the_uis_and_the_api_on_sigterm(stop_env: dict[str, str]) -> None:
    ports = [free_port(), int(stop_env["STOCKYARD_ML_UI_PORT"]), int(stop_env["STOCKYARD_API_PORT"])]
    with stockyard(["run", "--no-materialize", "--port", str(ports[0])], stop_env) as command:
        for url in (
            f"http://127.0.0.1:{ports[0]}/server_info",
            f"http://127.0.0.1:{ports[1]}/health",
            f"http://127.0.0.1:{ports[2]}/api/v1/health/live",
        ):
            wait_until_ready(url, command, seconds=120)
        stop_and_check(command, ports, signal.SIGTERM)


def test_serve_workers_stop_when_the_server_is_killed(stop_env: dict[str, str]) -> None:
    port = int(stop_env["STOCKYARD_API_PORT"])
    with stockyard(["serve", "--port", str(port), "--workers", "2"], stop_env) as command:
        wait_until_ready(f"http://127.0.0.1:{port}/api/v1/health/live", command)
        # Killed outright, the server cannot stop its workers: Linux tells them to stop.
        stop_and_check(command, [port], signal.SIGKILL)
