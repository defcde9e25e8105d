"""Quality of the stock universe (raw.stocks): GICS sectors, market caps, metadata for every priced symbol."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import psycopg

from stockyard.marketdata.schema import GICS_SECTORS
from stockyard.quality import expectations as expect
from stockyard.quality.results import QualityResult, Severity
from stockyard.quality.suite import Rule, run_suite

SAMPLE_COLUMNS = ["symbol", "name", "sector", "market_cap", "provider", "in_universe"]


def metadata_rules() -> list[Rule]:
    return [
        Rule(
            "unknown_sector",
            "sector is not one of the 11 GICS sectors",
            expect.ExpectColumnValuesToBeInSet(column="sector", value_set=list(GICS_SECTORS)),
        ),
        Rule(
            "non_positive_market_cap",
            "market cap is zero or negative",
            expect.ExpectColumnValuesToBeBetween(column="market_cap", min_value=0, strict_min=True),
        ),
        Rule(
            "missing_metadata",
            "the symbol has prices in raw.daily_prices but no row in raw.stocks",
            expect.ExpectColumnValuesToBeInSet(column="in_universe", value_set=[True]),
        ),
    ]


def check_metadata(conn: psycopg.Connection, *, results_dir: Path) -> QualityResult:
    """ERROR: a sector outside GICS, a market cap at or below zero, or a priced symbol with no metadata.

    Null sectors and market caps are allowed (the HTTP providers know neither) and counted in the metrics.
    """
    stocks = pd.DataFrame(
        conn.execute("select symbol, name, sector, market_cap, provider from raw.stocks").fetchall(),
        columns=SAMPLE_COLUMNS[:-1],
    )
    priced = {row[0] for row in conn.execute("select distinct symbol from raw.daily_prices")}
    unlisted = pd.DataFrame({"symbol": sorted(priced - set(stocks["symbol"]))}).reindex(
        columns=stocks.columns
    )
    frame = pd.concat(
        [stocks.assign(in_universe=True), unlisted.assign(in_universe=False)], ignore_index=True
    )
    frame["market_cap"] = frame["market_cap"].astype("float64")
    name = "stock_universe.metadata_rules"
    findings, path = run_suite(
        name,
        frame,
        metadata_rules(),
        severity=Severity.ERROR,
        id_columns=["symbol"],
        sample_columns=SAMPLE_COLUMNS,
        results_dir=results_dir,
    )
    metrics: dict[str, int | float | str] = {
        "symbols": len(stocks),
        "priced_symbols": len(priced),
        "without_sector": int(stocks["sector"].isna().sum()),
        "without_market_cap": int(stocks["market_cap"].isna().sum()),
    }
    return QualityResult(name, Severity.ERROR, len(frame), findings, path, metrics=metrics)
