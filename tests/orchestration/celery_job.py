"""A job of the project's definitions for the Celery test, importable by the worker processes: Celery workers
load a step's job from the run's code pointer, so the job is built by a module-level function.

A trading day of ingestion (the stock universe, the day's bars and corporate actions) with their quality
checks: steps that are fast, several of which can run at once.
"""

from __future__ import annotations

import dagster as dg

from orchestration.definitions import build_definitions

JOB_NAME = "celery_ingestion_day"


def ingestion_day_job() -> dg.JobDefinition:
    job = dg.define_asset_job(JOB_NAME, selection=dg.AssetSelection.groups("ingestion"))
    return dg.Definitions.merge(build_definitions(), dg.Definitions(jobs=[job])).resolve_job_def(JOB_NAME)
