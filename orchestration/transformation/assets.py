"""dbt models as Dagster assets: one asset per model, one asset check per dbt test.

The incremental models are partitioned by trading day and receive the run's window as `start_date` /
`end_date` vars, so a daily run recomputes only the new dates (plus the lookback the windows need) and their
data tests read only those dates (macros/get_where_subquery.sql); the views and small tables are rebuilt
whole. Both point dbt at the warehouse resource's database.
"""

import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from orchestration.ingestion.assets import RAW_CORPORATE_ACTIONS, RAW_DAILY_PRICES, STOCK_UNIVERSE
from orchestration.partitions import window_dates
from orchestration.resources import ApiCacheResource, WarehouseResource
from stockyard.endpoints import dbt_pointed_at
from stockyard.settings import PROJECT_ROOT

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
# dbt's command line as installed beside this Python, whether or not the environment's bin folder is on PATH:
# stockyard-dbt, which does not parse the whole project again for each window (cli/dbt_cli.py).
DBT_EXECUTABLE = str(Path(sys.executable).parent / "stockyard-dbt")
INCREMENTAL = "config.materialized:incremental"
# The folders of dbt_project.yml's model-, macro- and test-paths.
SOURCE_FOLDERS = ("models", "macros", "tests")
# Models and their data tests. Unit tests check SQL logic on fixed rows, not the data, so they run in CI
# (tests/dbt) rather than on every materialization, as dbt advises.
BUILD = ["build", "--exclude-resource-type", "unit_test"]
# The raw tables are the ingestion assets: dbt's sources point at them, so lineage runs through.
SOURCE_ASSETS = {
    "daily_prices": RAW_DAILY_PRICES,
    "corporate_actions": RAW_CORPORATE_ACTIONS,
    "stocks": STOCK_UNIVERSE,
}


class StockyardDbtTranslator(DagsterDbtTranslator):
    """Keys are model names (sources map to the ingestion assets); groups are the dbt folders."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return SOURCE_ASSETS[dbt_resource_props["name"]]
        return dg.AssetKey(dbt_resource_props["name"])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        # fqn is [project, folder, ..., model]: the first folder is staging, intermediate or marts.
        fqn: list[str] = dbt_resource_props["fqn"]
        return fqn[1] if len(fqn) > 2 else None


def dbt_project() -> DbtProject:
    """The dbt project with a manifest that matches its files (parsed again when a file is newer)."""
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
    if _manifest_is_stale(project.manifest_path):
        dbt_cli(project).cli(["parse", "--quiet"], target_path=project.target_path).wait()
    return project


def dbt_cli(project: DbtProject) -> DbtCliResource:
    return DbtCliResource(project_dir=project, dbt_executable=DBT_EXECUTABLE)


def _manifest_is_stale(manifest: Path) -> bool:
    if not manifest.exists():
        return True
    # The project's own files only: what dbt writes under target/ on every build must not make the manifest
    # look stale, or every process loading the definitions parses again and rewrites it under the others.
    sources = [
        DBT_PROJECT_DIR / "dbt_project.yml",
        *(path for folder in SOURCE_FOLDERS for path in (DBT_PROJECT_DIR / folder).glob("**/*.[sy]*")),
    ]
    return max(path.stat().st_mtime for path in sources) > manifest.stat().st_mtime


def build_dbt_assets(
    project: DbtProject, partitions_def: dg.PartitionsDefinition
) -> tuple[dg.AssetsDefinition, dg.AssetsDefinition]:
    """The partitioned incremental models, and the rest."""
    translator = StockyardDbtTranslator()

    @dbt_assets(
        manifest=project.manifest_path,
        select=INCREMENTAL,
        dagster_dbt_translator=translator,
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        name="dbt_incremental_models",
    )
    def dbt_incremental_models(
        context: dg.AssetExecutionContext,
        dbt: DbtCliResource,
        warehouse_db: WarehouseResource,
        api_cache: ApiCacheResource,
    ) -> Iterator[Any]:
        start, end, _ = window_dates(context)
        window = json.dumps({"start_date": start.isoformat(), "end_date": end.isoformat()})
        with dbt_pointed_at(warehouse_db.database_url):
            yield from dbt.cli([*BUILD, "--vars", window], context=context).stream()
        # The API reads these marts: a rebuilt day must not be answered from the cache.
        api_cache.purge()

    @dbt_assets(
        manifest=project.manifest_path,
        exclude=INCREMENTAL,
        dagster_dbt_translator=translator,
        name="dbt_models",
    )
    def dbt_models(
        context: dg.AssetExecutionContext,
        dbt: DbtCliResource,
        warehouse_db: WarehouseResource,
        api_cache: ApiCacheResource,
    ) -> Iterator[Any]:
        with dbt_pointed_at(warehouse_db.database_url):
            yield from dbt.cli(BUILD, context=context).stream()
        api_cache.purge()

    return dbt_incremental_models, dbt_models
