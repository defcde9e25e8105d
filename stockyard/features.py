"""The features of marts.fct_stock_features as its dbt yml declares them: the one list the quality check, the
API, the model datasets and the tests read.

Every column of dbt_project/models/marts/fct_stock_features.yml but the keys (symbol, date, history_days) and
the `<feature>_rank` columns is a feature, and says under `config: meta: feature:`
- warmup: the symbol's trading days (history_days) from which it has a value; it is null before, by design;
- low, high: the range its definition guarantees (unbounded where left out), and strict_low: true when low
  itself is excluded;
- needs_market_moves: true when it is undefined (null by rule) where the market's returns did not vary over
  its window;
- served: true when the API shows it (the analysis' indicators, in the yml's order);
- price_level: true when it is in back-adjusted price units, which a later split or dividend rescales.
A feature is ranked across symbols when the yml documents its `<feature>_rank` column.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml  # type: ignore[import-untyped]  # no stubs in the environment
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stockyard.settings import PROJECT_ROOT

FEATURES_YML = PROJECT_ROOT / "dbt_project" / "models" / "marts" / "fct_stock_features.yml"
FEATURES_MODEL = "fct_stock_features"
ALPHA158_YML = PROJECT_ROOT / "dbt_project" / "models" / "marts" / "fct_alpha158.yml"
ALPHA158_MODEL = "fct_alpha158"
KEY_COLUMNS = ("symbol", "date", "history_days")
RANK_SUFFIX = "_rank"


class Feature(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    warmup: int = Field(ge=1)
    low: float | None = None
    high: float | None = None
    strict_low: bool = False
    needs_market_moves: bool = False
    served: bool = False
    price_level: bool = False
    ranked: bool = False


@lru_cache(maxsize=1)
def stock_features() -> tuple[Feature, ...]:
    """The features in the yml's order, read once per process."""
    return read_features(FEATURES_YML)


def served_features() -> tuple[str, ...]:
    return tuple(feature.name for feature in stock_features() if feature.served)


def ranked_features() -> tuple[str, ...]:
    return tuple(feature.name for feature in stock_features() if feature.ranked)


@lru_cache(maxsize=1)
def alpha158_features() -> tuple[str, ...]:
    """The names of marts.fct_alpha158's features (Qlib's Alpha158 names, lower case), in the yml's order."""
    return tuple(feature.name for feature in read_features(ALPHA158_YML, model_name=ALPHA158_MODEL))


def read_features(path: Path, model_name: str = FEATURES_MODEL) -> tuple[Feature, ...]:
    """The features of the model `model_name` in the yml at `path`; a column neither key, rank nor feature, or
    a feature's meta with a missing, unknown or mistyped key, is an error naming the file and the column."""
    models = yaml.safe_load(path.read_text())["models"]
    (model,) = [model for model in models if model["name"] == model_name]
    columns = {column["name"]: column for column in model["columns"]}
    features = []
    for name, column in columns.items():
        if name in KEY_COLUMNS or name.endswith(RANK_SUFFIX):
            continue
        meta = ((column.get("config") or {}).get("meta") or {}).get("feature")
        if meta is None:
            raise ValueError(
                f"{path}: column {name} has no `config: meta: feature:` (its warm-up and range); every column"
                f" but {', '.join(KEY_COLUMNS)} and the {RANK_SUFFIX} columns is a feature"
            )
        try:
            features.append(Feature(name=name, ranked=f"{name}{RANK_SUFFIX}" in columns, **meta))
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            raise ValueError(f"{path}: column {name}: meta feature: {problems}") from error
        except TypeError as error:
            raise ValueError(f"{path}: column {name}: meta feature: {error}") from error
    known = {feature.name for feature in features}
    orphans = [
        name for name in columns if name.endswith(RANK_SUFFIX) and name[: -len(RANK_SUFFIX)] not in known
    ]
    if orphans:
        raise ValueError(f"{path}: {', '.join(orphans)} rank no feature of the model")
    return tuple(features)
