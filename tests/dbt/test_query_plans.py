"""The API's query patterns reach the big marts through their indexes, not by reading them whole.

The marts are ANALYZEd by their dbt post-hook, so these are the plans the planner picks on its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.dbt.synthetic_market import RawMarket

pytestmark = pytest.mark.slow

BIG_TABLES = {"fct_daily_prices", "fct_stock_features", "fct_forward_returns", "fct_sector_daily"}

API_QUERIES = {
    "prices of one symbol in a date range": """
        select * from marts.fct_daily_prices
        where symbol = %(symbol)s and date between %(start)s and %(end)s
        order by date
    """,
    "latest prices for a list of symbols": """
        select * from marts.fct_latest_prices where symbol = any(%(symbols)s)
    """,
    "features for a date": "select * from marts.fct_stock_features where date = %(date)s",
    "forward returns for a date": "select * from marts.fct_forward_returns where date = %(date)s",
    "sector daily for a sector and range": """
        select * from marts.fct_sector_daily
        where sector = %(sector)s and date between %(start)s and %(end)s
        order by date
    """,
}


def plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)


@pytest.mark.parametrize("pattern", API_QUERIES)
def test_api_query_reads_no_big_table_whole(pattern: str, built_warehouse: str, market: RawMarket) -> None:
    dates = sorted(market.bars["date"].unique())
    parameters = {
        "symbol": "SY03",
        "symbols": ["SY01", "SY04", "SY09"],
        "start": dates[-63].date(),
        "end": dates[-1].date(),
        "date": dates[-10].date(),
        "sector": "Energy",
    }
    with psycopg.connect(built_warehouse) as conn:
        (plan,) = conn.execute(f"explain (format json) {API_QUERIES[pattern]}", parameters).fetchone()  # type: ignore[arg-type]
    nodes = list(plan_nodes((plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"]))
    full_scans = [
        node["Relation Name"]
        for node in nodes
        if node["Node Type"] == "Seq Scan" and node["Relation Name"] in BIG_TABLES
    ]
    assert not full_scans, f"{pattern}: sequential scan of {full_scans}"
