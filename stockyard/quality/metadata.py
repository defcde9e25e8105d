"""Quality of the stock universe (raw.stocks): GICS sectors, market caps, metadata for every priced symbol,
and the sector names that could not be mapped to a GICS sector on the way in."""

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


def sector_name_rules() -> list[Rule]:
    return [
        Rule(
            "unrecognised_sector",
            "the provider's sector names no GICS sector, today's or historical: loaded without a sector",
            expect.ExpectColumnValuesToBeInSet(column="sector_recognised", value_set=[True]),
        )
    ]


def check_sector_names(conn: psycopg.Connection, *, results_dir: Path) -> QualityResult:
    """WARN: stocks whose sector as given maps to no GICS sector (loaded with none, see
    stockyard.marketdata.sectors); the metrics count each name that was mapped to today's."""
    stocks = pd.DataFrame(
        conn.execute("select symbol, name, sector, sector_as_given from raw.stocks").fetchall(),
        columns=["symbol", "name", "sector", "sector_as_given"],
    )
    stocks["sector_recognised"] = stocks["sector"].notna() | stocks["sector_as_given"].isna()
    name = "stock_universe.sector_names"
    findings, path = run_suite(
        name,
        stocks,
        sector_name_rules(),
        severity=Severity.WARN,
        id_columns=["symbol"],
        sample_columns=["symbol", "name", "sector_as_given"],
        results_dir=results_dir,
    )
    renamed = stocks.loc[stocks["sector"].notna() & (stocks["sector"] != stocks["sector_as_given"])]
    mapped = (renamed["sector_as_given"] + " -> " + renamed["sector"]).value_counts().sort_index()
    unrecognised = stocks.loc[~stocks["sector_recognised"], "sector_as_given"].value_counts().sort_index()
    metrics: dict[str, int | float | str | dict[str, int]] = {
        "symbols": len(stocks),
        "sectors_mapped": {str(names): int(rows) for names, rows in mapped.items()},
        "sectors_unrecognised": {str(sector): int(rows) for sector, rows in unrecognised.items()},
    }
    return QualityResult(name, Severity.WARN, len(stocks), findings, path, metrics=metrics)
