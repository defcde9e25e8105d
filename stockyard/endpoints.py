"""Which PostgreSQL and Redis to use: the ones configured by STOCKYARD_SERVICES_DATABASE_URL / _REDIS_URL, or
the embedded ones.

Only the addresses: starting and stopping the embedded servers is the command line's job (cli.services).
The embedded servers listen on loopback ports chosen once and remembered under the project's state folder.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from stockyard.settings import ServicesSettings

# Databases next to the warehouse: Dagster's run/event storage and MLflow's tracking store.
DAGSTER_DATABASE_SUFFIX = "_dagster"
MLFLOW_DATABASE_SUFFIX = "_mlflow"
EMBEDDED_DATABASE = "stockyard"
# Under the state folder: the ports the embedded servers were given.
PORTS_FILE = "services.json"


class ServiceError(RuntimeError):
    pass


@dataclass(frozen=True)
class Endpoints:
    database_url: str
    redis_url: str
    embedded: bool

    @property
    def dagster_database_url(self) -> str:
        return sibling_database_url(self.database_url, DAGSTER_DATABASE_SUFFIX)

    @property
    def mlflow_database_url(self) -> str:
        return sibling_database_url(self.database_url, MLFLOW_DATABASE_SUFFIX)

    def environment(self) -> dict[str, str]:
        """Variables that point child processes (Dagster, dbt, the API) at these services."""
        return {
            ServicesSettings.variable("database_url"): self.database_url,
            ServicesSettings.variable("redis_url"): self.redis_url,
            "DAGSTER_DATABASE_URL": self.dagster_database_url,
            **dbt_profile_environment(self.database_url),
        }


def resolve_endpoints(settings: ServicesSettings) -> Endpoints:
    """The configured services, or the embedded ones when their URLs are unset."""
    database_url = settings.database_url or embedded_database_url(settings.state_dir)
    redis_url = settings.redis_url or embedded_redis_url(settings.state_dir)
    uses_embedded = settings.database_url is None or settings.redis_url is None
    return Endpoints(database_url=database_url, redis_url=redis_url, embedded=uses_embedded)


def embedded_database_url(state_dir: Path) -> str:
    return f"postgresql://postgres@127.0.0.1:{embedded_ports(state_dir)['postgres']}/{EMBEDDED_DATABASE}"


def embedded_redis_url(state_dir: Path) -> str:
    return f"redis://127.0.0.1:{embedded_ports(state_dir)['redis']}/0"


def embedded_ports(state_dir: Path) -> dict[str, int]:
    """The embedded servers' ports: remembered under `state_dir`, or chosen now (free ones) and written."""
    ports_file = state_dir / PORTS_FILE
    if ports_file.exists():
        ports: dict[str, int] = json.loads(ports_file.read_text())
        return ports
    ports = {"postgres": _free_port(55432), "redis": _free_port(56379)}
    state_dir.mkdir(parents=True, exist_ok=True)
    ports_file.write_text(json.dumps(ports))
    return ports


def dbt_profile_environment(database_url: str) -> dict[str, str]:
    """The STOCKYARD_PG_* variables dbt_project/profiles.yml reads, pointing dbt at `database_url`."""
    info = psycopg.conninfo.conninfo_to_dict(database_url)
    return {
        "STOCKYARD_PG_HOST": str(info.get("host") or "127.0.0.1"),
        "STOCKYARD_PG_PORT": str(info.get("port") or "5432"),
        "STOCKYARD_PG_USER": str(info.get("user") or "postgres"),
        "STOCKYARD_PG_PASSWORD": str(info.get("password") or ""),
        "STOCKYARD_PG_DATABASE": str(info.get("dbname") or EMBEDDED_DATABASE),
    }


@contextmanager
def dbt_pointed_at(database_url: str) -> Iterator[None]:
    """Point dbt (in-process or a child) at `database_url` for the duration; the old values come back."""
    variables = dbt_profile_environment(database_url)
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def sibling_database_url(database_url: str, suffix: str) -> str:
    """The URL of a database beside `database_url` on the same server, named `<dbname><suffix>`."""
    head, _, tail = database_url.partition("?")
    base, _, dbname = head.rpartition("/")
    query = f"?{tail}" if tail else ""
    return f"{base}/{dbname}{suffix}{query}"


def _free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            chosen: int = sock.getsockname()[1]
            return chosen
    raise ServiceError("no free TCP port on 127.0.0.1")
