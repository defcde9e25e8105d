"""Splitting an asset selection into runs Dagster can execute.

One run cannot mix partitioned and unpartitioned assets, so a selection spanning both becomes stages: an asset
goes in the earliest stage after all its selected parents, and moves one stage later whenever its partitioning
differs from a parent's. The ML assets, and what depends on them, come after all the others. Stages run in
order; a partitioned stage covers the whole window in one run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import dagster as dg
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph

from orchestration.definitions import build_definitions
from orchestration.ml.assets import ML_GROUP


@dataclass(frozen=True)
class Stage:
    asset_keys: list[str]
    partition_range: str | None


def plan_stages(selection: str, *, start: date | None = None, end: date | None = None) -> list[Stage]:
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    # Assets computed together (a multi-asset) can only run together.
    selected = dg.AssetSelection.from_string(selection).required_multi_asset_neighbors().resolve(graph)
    keys = [key for key in graph.toposorted_asset_keys if key in selected]
    # Training is slow and can fail: the ML assets and what depends on them run after every other stage, so
    # a failed training leaves the warehouse complete.
    late: set[dg.AssetKey] = set()
    for key in keys:
        node = graph.get(key)
        if node.group_name == ML_GROUP or any(parent in late for parent in node.parent_keys):
            late.add(key)
    early = [key for key in keys if key not in late]
    return _stages(graph, early, start, end) + _stages(graph, [k for k in keys if k in late], start, end)


def _stages(graph: AssetGraph, keys: list[dg.AssetKey], start: date | None, end: date | None) -> list[Stage]:
    """Stages of `keys` (in topological order) by level: an asset's level is the highest of its parents'
    among `keys`, plus one where the partitioning changes."""
    level: dict[dg.AssetKey, int] = {}
    for key in keys:
        partitioned = graph.get(key).is_partitioned
        level[key] = max(
            (
                level[parent] + (graph.get(parent).is_partitioned != partitioned)
                for parent in graph.get(key).parent_keys
                if parent in level
            ),
            default=0,
        )

    stages: list[Stage] = []
    for stage_level in sorted(set(level.values())):
        for partitioned in (False, True):
            members = [
                k for k in keys if level[k] == stage_level and graph.get(k).is_partitioned == partitioned
            ]
            if not members:
                continue
            partition_range = None
            if partitioned:
                partitions_def = graph.get(members[0]).partitions_def
                assert partitions_def is not None
                partition_range = _partition_range(partitions_def, start, end)
            stages.append(Stage([k.to_user_string() for k in members], partition_range))
    return stages


def _partition_range(partitions_def: dg.PartitionsDefinition, start: date | None, end: date | None) -> str:
    keys = partitions_def.get_partition_keys()
    if not keys:
        raise ValueError("no trading-day partitions exist yet: STOCKYARD_MARKET_DATA_START is in the future")
    inside = [
        k for k in keys if (start is None or k >= start.isoformat()) and (end is None or k <= end.isoformat())
    ]
    if not inside:
        raise ValueError(f"no trading day between {start} and {end} (partitions run {keys[0]}..{keys[-1]})")
    return f"{inside[0]}...{inside[-1]}"
