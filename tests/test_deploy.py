"""The stack of docker-compose.yml, checked without a container engine: `docker-compose config` (Debian's
docker-compose 1.29) validates it as a user would run it, with .env copied from .env.example, and every
service of the image finds the settings it reads set, and valid."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from ml.config import MLSettings
from orchestration.executors import ExecutorSettings
from serving.settings import ApiSettings
from stockyard.settings import PROJECT_ROOT, ServicesSettings, StockyardSettings
from tests.stockyard.support import example_variables, sections

IMAGE = "stockyard:latest"
# Started once, run to the end: the migrations.
ONE_SHOT = {"migrate"}
SERVICES = {
    "postgres",
    "redis",
    "migrate",
    "mlflow",
    "dagster-code",
    "dagster-webserver",
    "dagster-daemon",
    "worker",
    "api",
}


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The compose file as docker-compose resolves it, in a project folder holding only the .env a user
    makes from .env.example."""
    executable = shutil.which("docker-compose")
    assert executable, "docker-compose is not installed: apt-get install docker-compose (.ci/run does)"
    project = tmp_path_factory.mktemp("compose")
    shutil.copy(PROJECT_ROOT / ".env.example", project / ".env")
    compose_file = str(PROJECT_ROOT / "docker-compose.yml")
    checked = subprocess.run(
        [executable, "-f", compose_file, "--project-directory", str(project), "config"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    # docker-compose warns, and substitutes a blank, for a ${VARIABLE} set nowhere.
    assert "variable is not set" not in checked.stderr, checked.stderr
    resolved: dict[str, Any] = yaml.safe_load(checked.stdout)
    return resolved


def stockyard_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: service for name, service in compose["services"].items() if service["image"] == IMAGE}


def test_every_service_of_the_stack_is_there_with_a_health_check(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service["restart"] == "no"
        else:
            assert service["healthcheck"]["test"], f"{name} has no health check"
    # One image, several commands, built from the project.
    built = stockyard_services(compose)
    assert set(built) == SERVICES - {"postgres", "redis"}
    assert all(service["build"]["context"] for service in built.values())
    assert services["worker"]["scale"] >= 2
    assert int(services["api"]["environment"]["STOCKYARD_API_WORKERS"]) > 1


def test_the_migrations_run_once_before_the_api_and_dagster(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == ["stockyard", "db", "upgrade"]
    for name in ("api", "dagster-code", "worker", "mlflow"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    for name in ("dagster-webserver", "dagster-daemon"):
        assert services[name]["depends_on"]["dagster-code"] == {"condition": "service_healthy"}


def test_every_variable_the_services_read_is_set_and_valid(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    dagster_yaml = (PROJECT_ROOT / "dagster_home" / "dagster.yaml").read_text()
    dagster_variables = set(re.findall(r"env:\s*(\w+)", dagster_yaml))
    required = {
        # Unset, `stockyard` would start embedded servers inside the container.
        ServicesSettings.variable("database_url"),
        ServicesSettings.variable("redis_url"),
        MLSettings.variable("tracking_uri"),
        ExecutorSettings.variable("kind"),
        # The compose file's PostgreSQL asks for passwords: the API's role needs one.
        ApiSettings.variable("db_password"),
        *dagster_variables,
    }
    known = example_variables() | dagster_variables
    for name, service in stockyard_services(compose).items():
        environment = {key: str(value) for key, value in service["environment"].items()}
        assert required <= environment.keys(), f"{name} lacks {required - environment.keys()}"
        assert all(environment[variable] for variable in required), name
        assert environment.keys() <= known, f"{name} sets variables .env.example does not list"
        assert environment[ExecutorSettings.variable("kind")] == "celery"
        # Every section of the settings validates in the service's environment, as the service reads it.
        for variable, value in environment.items():
            monkeypatch.setenv(variable, value)
        for section in sections():
            assert isinstance(section(_env_file=None), StockyardSettings)  # type: ignore[call-arg]
        monkeypatch.undo()
    # The compose file's own variables are listed in .env.example too.
    text = (PROJECT_ROOT / "docker-compose.yml").read_text()
    assert set(re.findall(r"\$\{(\w+)", text)) <= example_variables()


def test_the_services_reach_each_other_by_the_stack_s_names(compose: dict[str, Any]) -> None:
    services = compose["services"]
    environment = services["api"]["environment"]
    assert "@postgres:5432/" in environment[ServicesSettings.variable("database_url")]
    assert environment[ServicesSettings.variable("redis_url")].startswith("redis://redis:6379/")
    assert environment[MLSettings.variable("tracking_uri")] == "http://mlflow:5000"
    # The run links in the Dagster UI lead a browser to the port the MLflow server is published on.
    (published,) = services["mlflow"]["ports"]  # host ip:host port:container port
    host_port = published.rsplit(":", 1)[0]
    assert environment[MLSettings.variable("ui_url")] == f"http://{host_port}"
    workspace = yaml.safe_load((PROJECT_ROOT / "deploy" / "workspace.yaml").read_text())
    assert workspace["load_from"] == [
        {"grpc_server": {"host": "dagster-code", "port": 4000, "location_name": "stockyard"}}
    ]
    assert "4000" in services["dagster-code"]["command"]


def test_the_dagster_instance_settings_are_valid_with_the_community_pop_up_off() -> None:
    from dagster._core.instance.config import dagster_instance_config

    settings, _ = dagster_instance_config(str(PROJECT_ROOT / "dagster_home"))
    assert settings["nux"] == {"enabled": False}
    assert settings["telemetry"] == {"enabled": False}
