"""Where the steps of the project's runs execute: on one machine, each step in a process of its own (the
multiprocess executor; a run of short steps asks to run them in its own process instead), or Dagster's
Celery executor, which hands each step to Celery workers on as many machines as there are, with the shared
Redis as broker (STOCKYARD_EXECUTOR_KIND=celery). The workers run the Celery app of
orchestration.celery_worker, built from the same settings as the executor, so both sides name one broker.

With Celery, as many steps run at once as there are workers: the three model families, and each seed of
XGBoost and the LSTM, train side by side, each on a worker of its own (the limit on training steps at once
is the multiprocess executor's, for one machine: one unless STOCKYARD_EXECUTOR_TRAINING_STEPS says more).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

import dagster as dg
from dagster_celery import celery_executor
from dagster_celery.defaults import broker_transport_options
from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from orchestration.ml.assets import TRAINING_TAG
from stockyard.endpoints import resolve_endpoints
from stockyard.settings import StockyardSettings, get_services_settings

# What the steps import, loaded before any runs: the code location, and Great Expectations (which the checks
# import, seconds).
PRELOADED_MODULES = ["orchestration.definitions", "stockyard.quality.suite"]
# What a run asks for to run its steps in its own process, one after the other: for runs of short steps
# (ingestion and its checks), where starting the step server and a process per step costs more than the
# steps (see plan_launch in orchestration.launch).
IN_PROCESS_RUN_CONFIG = {"execution": {"config": {"in_process": True}}}


@lru_cache
def one_machine_executor(training_steps: int) -> dg.ExecutorDefinition:
    """Dagster's multiprocess executor, running at most `training_steps` training steps (seeds and families)
    at once: by default one, as a training uses every core and memory holds one training's data. A run may
    ask for its steps in its own process instead (IN_PROCESS_RUN_CONFIG)."""
    multiprocess = {
        "tag_concurrency_limits": [{"key": TRAINING_TAG, "limit": training_steps}],
        # Steps fork from a server that has the code location and Great Expectations (which the checks
        # import) imported already, instead of each importing them again (seconds per step). Named here:
        # without the list Dagster preloads only its executor (it reads the missing list as an empty one).
        "start_method": {"forkserver": {"preload_modules": PRELOADED_MODULES}},
    }

    def on_one_machine(config: dict[str, Any]) -> dict[str, Any]:
        return {"in_process": {}} if config["in_process"] else {"multiprocess": multiprocess}

    return dg.multi_or_in_process_executor.configured(
        on_one_machine,
        config_schema={
            "in_process": dg.Field(
                bool,
                default_value=False,
                description="Run the steps one after the other in the run's process rather than each in a "
                "process of its own (forked from a server that has the code location loaded).",
            )
        },
    )


# The queue dagster-celery routes steps to and its workers listen on.
CELERY_QUEUE = "dagster"


class ExecutorSettings(StockyardSettings):
    """Which executor runs the steps, and the Celery broker when it is Celery's."""

    model_config = SettingsConfigDict(env_prefix="STOCKYARD_EXECUTOR_")

    kind: Literal["multiprocess", "celery"] = Field(
        default="multiprocess",
        description="multiprocess: the steps run as processes of the run, training one at a time. "
        "celery: each step is a task for the Celery workers (`celery -A orchestration.celery_worker "
        "worker`), as many steps at once as there are workers.",
    )
    training_steps: int = Field(
        default=1,
        ge=1,
        description="multiprocess: training steps (each seed of each family is one) run at once. XGBoost "
        "and Prophet use every core unless STOCKYARD_ML_THREADS says fewer.",
    )
    celery_broker_url: str | None = Field(
        default=None, description="Broker of the Celery tasks; unset: the services' Redis."
    )
    celery_backend_url: str | None = Field(
        default=None, description="Where the workers put the steps' results; unset: the broker."
    )
    celery_key_prefix: str = Field(
        default="stockyard:celery:",
        description="Prefix of the queue's and the results' Redis keys: apart from the API's cache, and from "
        "another stack's queue on the same Redis.",
    )

    @field_validator("celery_broker_url", "celery_backend_url")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value or None


@lru_cache
def get_executor_settings() -> ExecutorSettings:
    return ExecutorSettings()


def celery_app_arguments(settings: ExecutorSettings) -> dict[str, Any]:
    """The Celery executor's configuration: broker and result backend (the services' Redis unless set)."""
    broker = settings.celery_broker_url or resolve_endpoints(get_services_settings()).redis_url
    prefix = {"global_keyprefix": settings.celery_key_prefix}
    return {
        "broker": broker,
        "backend": settings.celery_backend_url or broker,
        "config_source": {
            "broker_transport_options": {**broker_transport_options, **prefix},
            "result_backend_transport_options": prefix,
            # A worker takes the next step only when it has finished one: steps are long and uneven.
            "worker_prefetch_multiplier": 1,
            "broker_connection_retry_on_startup": True,
        },
    }


def in_process_run_config(settings: ExecutorSettings | None = None) -> dict[str, Any]:
    """The run config that runs a run's steps in its own process, where the executor can (not Celery's)."""
    settings = settings or get_executor_settings()
    return IN_PROCESS_RUN_CONFIG if settings.kind == "multiprocess" else {}


def build_executor(settings: ExecutorSettings | None = None) -> dg.ExecutorDefinition:
    """The executor the settings choose, for Definitions(executor=...)."""
    settings = settings or get_executor_settings()
    if settings.kind == "multiprocess":
        return one_machine_executor(settings.training_steps)
    return celery_executor.configured(celery_app_arguments(settings))
