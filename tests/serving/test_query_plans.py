"""Every query pattern of the API's repositories can be answered through an index.

The statements are the repositories' own, compiled as the app sends them. The test warehouse is small, so the
planner would rightly read some tables whole; with sequential scans disabled it still does so only when no
index serves the query, which is what this checks (tests/dbt/test_query_plans.py checks the planner's own
choices on the marts).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import Select
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

from serving.repositories import analysis, models, prices, recommendations, stocks
from serving.schemas import Action, Adjustment, Interval
from tests.serving.support import Warehouse

# Tables that grow with symbols x dates; a small table (dim_stocks, model_versions) may be read whole.
BIG_TABLES = {
    "fct_daily_prices",
    "fct_stock_features",
    "fct_sector_daily",
    "recommendations",
    "forecasts",
    "backtest_positions",
    "backtests",
}


def plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)


def patterns(warehouse: Warehouse) -> dict[str, Select[tuple[object, ...]]]:
    symbols = warehouse.symbols[:5]
    start, end = warehouse.latest_date - timedelta(days=90), warehouse.latest_date
    return {
        "daily prices of many symbols": prices.prices_statement(
            symbols, start=start, end=end, adjustment=Adjustment.raw, interval=Interval.daily
        ),
        "weekly prices of many symbols": prices.prices_statement(
            symbols, start=start, end=end, adjustment=Adjustment.adjusted, interval=Interval.weekly
        ),
        "latest prices of many symbols": prices.latest_prices_statement(symbols),
        "a date's ranked recommendations": recommendations.ranked_statement(
            day=warehouse.latest_date, sector="Energy", action=Action.buy, limit=20
        ),
        "a symbol's recommendation history": recommendations.history_statement(
            symbol=symbols[0], start=start, end=None, limit=100
        ),
        "analysis indicators": analysis.indicators_statement(symbols[0]),
        "analysis recommendation and backtest": analysis.model_statement(symbols[0]),
        "analysis forecast": analysis.forecast_statement(symbols[0]),
        "models with their latest backtest": models.aliased_versions_statement(),
    }


@pytest.mark.parametrize(
    "pattern",
    [
        "daily prices of many symbols",
        "weekly prices of many symbols",
        "latest prices of many symbols",
        "a date's ranked recommendations",
        "a symbol's recommendation history",
        "analysis indicators",
        "analysis recommendation and backtest",
        "analysis forecast",
        "models with their latest backtest",
    ],
)
def test_query_pattern_reads_no_big_table_whole(pattern: str, api_warehouse: Warehouse) -> None:
    compiled = patterns(api_warehouse)[pattern].compile(dialect=PGDialect_psycopg())  # type: ignore[no-untyped-call]
    with psycopg.connect(api_warehouse.url) as conn:
        conn.execute("set enable_seqscan = off")
        (plan,) = conn.execute(f"explain (format json) {compiled}", compiled.params).fetchone()  # type: ignore[misc]
    nodes = list(plan_nodes((plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"]))
    full_scans = [
        node["Relation Name"]
        for node in nodes
        if node["Node Type"] == "Seq Scan" and node["Relation Name"] in BIG_TABLES
    ]
    assert not full_scans, f"{pattern}: sequential scan of {full_scans}"


@pytest.mark.parametrize("query", ["AA", "alid app"])
def test_search_is_served_by_the_dim_stocks_indexes(query: str, api_warehouse: Warehouse) -> None:
    compiled = stocks.search_statement(query, limit=10).compile(dialect=PGDialect_psycopg())  # type: ignore[no-untyped-call]
    with psycopg.connect(api_warehouse.url) as conn:
        conn.execute("set enable_seqscan = off")
        (plan,) = conn.execute(f"explain (format json) {compiled}", compiled.params).fetchone()  # type: ignore[misc]
    nodes = list(plan_nodes((plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"]))
    assert not [n for n in nodes if n["Node Type"] == "Seq Scan" and n["Relation Name"] == "dim_stocks"]
    # Conditions inside an index scan: the index serves the match, not a filter over every entry.
    index_conditions = " ".join(n.get("Index Cond", "") for n in nodes)
    assert "~>=~" in index_conditions, f"symbol prefix of {query!r} not served by an index"
    assert "to_tsvector" in index_conditions, f"name words of {query!r} not served by an index"
