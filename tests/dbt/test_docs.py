"""dbt's documentation builds from the warehouse and matches the tables; source freshness runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.dbt.support import run_dbt

pytestmark = pytest.mark.slow


def test_docs_generate_documents_every_model_with_its_real_columns(
    built_warehouse: str, dbt_target_dir: Path
) -> None:
    run_dbt(["docs", "generate"], database_url=built_warehouse, target_dir=dbt_target_dir)

    manifest = json.loads((dbt_target_dir / "manifest.json").read_text())
    catalog = json.loads((dbt_target_dir / "catalog.json").read_text())
    models = [node for node in manifest["nodes"].values() if node["resource_type"] == "model"]
    built = {entry["metadata"]["name"]: entry for entry in catalog["nodes"].values()}
    assert models
    for model in models:
        assert model["description"].strip(), f"{model['name']} has no description"
        assert model["name"] in built, f"{model['name']} is not in the catalog"
        real_columns = set(built[model["name"]]["columns"])
        documented = set(model["columns"])
        assert documented == real_columns, (
            f"{model['name']}: documented but missing {sorted(documented - real_columns)}, "
            f"undocumented {sorted(real_columns - documented)}"
        )


def test_source_freshness_passes_on_rows_loaded_now(built_warehouse: str, dbt_target_dir: Path) -> None:
    run_dbt(["source", "freshness"], database_url=built_warehouse, target_dir=dbt_target_dir)

    results = json.loads((dbt_target_dir / "sources.json").read_text())["results"]
    assert {result["unique_id"].split(".")[-1]: result["status"] for result in results} == {
        "daily_prices": "pass",
        "corporate_actions": "pass",
        "stocks": "pass",
    }
