"""One feature list: the quality check, the API, the model datasets and the pandas reference all take theirs
from the features mart's yml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ml.datasets import PRICE_LEVEL_COLUMNS
from serving.schemas import Indicators
from serving.tables import INDICATOR_COLUMNS, fct_stock_features
from stockyard.features import FEATURES_YML, read_features
from stockyard.quality.features import FEATURES
from tests.dbt.reference import RANKED_FEATURES


def yml_columns() -> dict[str, dict[str, Any]]:
    """The features mart's columns as its yml writes them, read here without stockyard.features."""
    (model,) = yaml.safe_load(FEATURES_YML.read_text())["models"]
    return {column["name"]: column for column in model["columns"]}


def yml_features() -> dict[str, dict[str, Any]]:
    return {
        name: column["config"]["meta"]["feature"]
        for name, column in yml_columns().items()
        if "feature" in column.get("config", {}).get("meta", {})
    }


def test_every_feature_list_is_the_yml_s() -> None:
    features = yml_features()
    served = [name for name, meta in features.items() if meta.get("served")]
    ranked = [name.removesuffix("_rank") for name in yml_columns() if name.endswith("_rank")]

    assert list(FEATURES) == list(features)
    for name, spec in FEATURES.items():
        meta = features[name]
        assert (spec.warmup, spec.low, spec.high) == (meta["warmup"], meta.get("low"), meta.get("high")), name
        assert spec.strict_low == meta.get("strict_low", False), name
        assert spec.needs_market_moves == meta.get("needs_market_moves", False), name
    assert list(INDICATOR_COLUMNS) == served
    assert [column.name for column in fct_stock_features.columns] == ["symbol", "date", *served]
    assert list(Indicators.model_fields) == ["date", *served]
    for name in served:
        field = Indicators.model_fields[name]
        assert field.annotation == float | None and field.is_required(), name
    assert list(RANKED_FEATURES) == ranked
    assert list(PRICE_LEVEL_COLUMNS) == [name for name, meta in features.items() if meta.get("price_level")]


def test_every_column_but_the_keys_and_ranks_is_a_feature() -> None:
    keys_and_ranks = {name for name in yml_columns() if name.endswith("_rank")} | {
        "symbol",
        "date",
        "history_days",
    }
    assert set(yml_columns()) - keys_and_ranks == set(yml_features())


def write_yml(path: Path, columns: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"models": [{"name": "fct_stock_features", "columns": columns}]}))
    return path


def feature(name: str, **meta: Any) -> dict[str, Any]:
    return {"name": name, "config": {"meta": {"feature": meta}}}


def test_a_feature_column_without_its_meta_is_an_error_naming_the_file_and_column(tmp_path: Path) -> None:
    path = write_yml(tmp_path / "features.yml", [{"name": "symbol"}, {"name": "return_9d"}])

    with pytest.raises(ValueError, match=r"features\.yml: column return_9d has no `config: meta: feature:`"):
        read_features(path)


def test_a_misspelt_or_mistyped_meta_key_is_an_error_naming_the_column(tmp_path: Path) -> None:
    misspelt = write_yml(tmp_path / "misspelt.yml", [feature("rsi_14", warmup=15, hihg=100)])
    mistyped = write_yml(tmp_path / "mistyped.yml", [feature("rsi_14", warmup="fifteen")])

    with pytest.raises(ValueError, match=r"column rsi_14: meta feature: .*hihg"):
        read_features(misspelt)
    with pytest.raises(ValueError, match=r"column rsi_14: meta feature: .*warmup"):
        read_features(mistyped)


def test_a_rank_of_no_feature_is_an_error(tmp_path: Path) -> None:
    path = write_yml(tmp_path / "features.yml", [feature("rsi_14", warmup=15), {"name": "rsi_41_rank"}])

    with pytest.raises(ValueError, match="rsi_41_rank rank no feature of the model"):
        read_features(path)


def test_a_feature_is_ranked_when_its_rank_column_is_documented(tmp_path: Path) -> None:
    path = write_yml(
        tmp_path / "features.yml",
        [
            feature("rsi_14", warmup=15, low=0, high=100, served=True),
            feature("macd", warmup=26),
            {"name": "rsi_14_rank"},
        ],
    )

    rsi, macd = read_features(path)

    assert (rsi.name, rsi.ranked, rsi.served, rsi.low, rsi.high) == ("rsi_14", True, True, 0.0, 100.0)
    assert (macd.name, macd.ranked, macd.served, macd.low) == ("macd", False, False, None)
