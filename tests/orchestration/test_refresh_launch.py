"""The admin's refresh (serving/routes/admin.py) launches the daily job through Dagster's GraphQL API, which
the API reaches over HTTP without importing Dagster: its mutation must be one Dagster's schema accepts, for
the job, code location and repository this project defines."""

from __future__ import annotations

import yaml
from dagster_graphql.schema import create_schema
from graphql import parse, validate

from orchestration.definitions import build_definitions
from serving.routes.admin import DAGSTER_LOCATION, DAGSTER_REPOSITORY, LAUNCH_RUN
from serving.settings import ApiSettings
from stockyard.settings import PROJECT_ROOT


def test_the_refresh_mutation_is_valid_in_dagsters_graphql_schema() -> None:
    assert validate(create_schema().graphql_schema, parse(LAUNCH_RUN)) == []


def test_the_refresh_names_this_projects_location_repository_and_job() -> None:
    workspace = yaml.safe_load((PROJECT_ROOT / "workspace.yaml").read_text())
    (location,) = workspace["load_from"]
    assert location["python_module"]["location_name"] == DAGSTER_LOCATION
    defs = build_definitions()
    assert defs.get_repository_def().name == DAGSTER_REPOSITORY
    job = defs.resolve_job_def(ApiSettings.model_fields["refresh_job"].default)
    assert job.partitions_def is not None, "the refresh asks for the latest closed trading day's partition"
