# One image for every Stockyard service; docker-compose.yml gives each its command:
#   stockyard db upgrade | stockyard serve | dagster code-server start | dagster-webserver | dagster-daemon run
#   | celery -A orchestration.celery_worker worker | mlflow server
# The code stays where it was copied (an editable install): the project's root, with dbt_project/ beside the
# packages, is where stockyard.features and the dbt assets find the dbt project's files.
FROM python:3.11-slim-bookworm

# DAGSTER_HOME is the project's instance settings (PostgreSQL storage from DAGSTER_DATABASE_URL). The image has
# no git (nor a repository: runs record the commit as "unknown"), so GitPython, under MLflow, is told to be quiet.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/stockyard/dagster_home \
    DBT_SEND_ANONYMOUS_USAGE_STATS=false \
    MLFLOW_DISABLE_TELEMETRY=true \
    MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false \
    GIT_PYTHON_REFRESH=quiet

RUN useradd --create-home --uid 1000 stockyard

WORKDIR /opt/stockyard

# torch first, pinned, from the CPU index: a looser install pulls a multi-GB CUDA build (as in the Makefile).
RUN pip install "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu

# The dependencies in a layer of their own, rebuilt only when pyproject.toml changes: the project's packages
# are not copied yet, so this installs them and an empty stockyard.
COPY pyproject.toml README.md ./
RUN pip install ".[all]" && pip uninstall --yes stockyard

COPY stockyard stockyard
COPY orchestration orchestration
COPY ml ml
COPY serving serving
COPY cli cli
COPY dbt_project dbt_project
COPY workspace.yaml ./
COPY deploy deploy
COPY dagster_home/dagster.yaml dagster_home/dagster.yaml
RUN pip install --no-deps -e . \
    # The dbt manifest the Dagster definitions load, parsed now rather than by every container at start.
    && stockyard-dbt parse --quiet --project-dir dbt_project --profiles-dir dbt_project \
    && mkdir -p .stockyard dagster_home/storage /mlflow-artifacts \
    && chown -R stockyard:stockyard /opt/stockyard /mlflow-artifacts

USER stockyard
EXPOSE 3000 4000 5000 8000
CMD ["stockyard", "--help"]
