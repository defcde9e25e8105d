"""The stock-universe suite: GICS sectors, positive market caps, metadata for every priced symbol."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import psycopg

from stockyard import warehouse
from stockyard.marketdata.sample import SampleProvider
from stockyard.quality.metadata import check_metadata


def test_the_sample_universe_passes(quality_database: str, tmp_path: Path) -> None:
    with psycopg.connect(quality_database) as conn:
        result = check_metadata(conn, results_dir=tmp_path)
    assert result.passed and result.failing_rules == {}
    assert result.metrics["symbols"] == 12 and result.metrics["without_sector"] == 0


def test_bad_sectors_market_caps_and_unknown_priced_symbols_fail(
    empty_database_url: str, sample_market: SampleProvider, tmp_path: Path
) -> None:
    metadata = sample_market.metadata(sample_market.symbols())
    bad_sector, bad_cap, no_sector = metadata["symbol"].iloc[:3]
    metadata.loc[0, "sector"] = "Technology"  # not a GICS sector name
    metadata.loc[1, "market_cap"] = -1.0
    metadata.loc[2, ["sector", "market_cap"]] = [None, np.nan]  # unknown is allowed, and counted
    with psycopg.connect(empty_database_url) as conn:
        warehouse.load_stocks(conn, metadata, provider="sample", synthetic=True)
        conn.execute(
            "insert into raw.daily_prices (symbol, date, open, high, low, close, volume, provider) "
            "values ('ZZZZ', '2024-02-01', 10, 11, 9, 10, 100, 'sample')"
        )
        result = check_metadata(conn, results_dir=tmp_path)

    assert not result.passed
    assert result.failing_rules == {"unknown_sector": 1, "non_positive_market_cap": 1, "missing_metadata": 1}
    samples = {finding.rule: finding.sample for finding in result.findings}
    assert samples["unknown_sector"]["symbol"].tolist() == [bad_sector]
    assert samples["non_positive_market_cap"]["symbol"].tolist() == [bad_cap]
    assert samples["missing_metadata"]["symbol"].tolist() == ["ZZZZ"]
    assert result.metrics["without_sector"] == 1 and result.metrics["without_market_cap"] == 1
    assert no_sector not in set().union(*(sample["symbol"] for sample in samples.values()))
