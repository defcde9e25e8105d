"""The Celery app of the workers that run the project's steps when STOCKYARD_EXECUTOR_KIND=celery:

    celery -A orchestration.celery_worker worker -Q dagster --prefetch-multiplier 1 --concurrency 1

Celery's `-A` takes a module-level app, so this module builds it from the settings when imported; nothing else
imports it. Each task is one step: the worker loads the job from the run's code pointer (this image's
`orchestration.definitions`), runs the step and logs its events to the run's Dagster instance.
"""

from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from orchestration.executors import celery_app_arguments, get_executor_settings

# The app the executor makes to submit steps, from the same arguments (dagster-celery's own worker command
# does the same from a YAML file). dagster-celery's functions carry no type annotations.
_executor = CeleryExecutor.for_cli(**celery_app_arguments(get_executor_settings()))  # type: ignore[no-untyped-call]
app = make_app(_executor.app_args())  # type: ignore[no-untyped-call]
execute_plan = create_task(app)  # type: ignore[no-untyped-call]
