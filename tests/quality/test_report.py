"""The command-line report: every suite on what the warehouse holds for a window."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psycopg
import pytest

from stockyard.marketdata.sample import SampleProvider
from stockyard.quality.report import main
from stockyard.quality.settings import get_quality_settings
from tests.quality.defects import Defect, DefectInjectingProvider, DefectKind
from tests.quality.support import DEFECT_DAY, WINDOW, load_window


@pytest.fixture
def quality_settings_from_env() -> Iterator[None]:
    get_quality_settings.cache_clear()
    yield
    get_quality_settings.cache_clear()


def test_the_report_prints_every_check_and_fails_on_errors(
    quality_database: str,
    sample_market: SampleProvider,
    steady_symbols: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    quality_settings_from_env: None,
) -> None:
    symbol = steady_symbols[0]
    defects = [
        Defect(DefectKind.HIGH_BELOW_LOW, symbol, DEFECT_DAY),
        Defect(DefectKind.GAP, symbol, date(2024, 3, 6)),
    ]
    with psycopg.connect(quality_database) as conn:
        load_window(conn, DefectInjectingProvider(sample_market, defects))
    args = ["--database-url", quality_database, "--start", str(WINDOW.first), "--end", str(WINDOW.last)]
    args += ["--results-dir", str(tmp_path)]

    monkeypatch.setenv("STOCKYARD_QUALITY_MAX_QUARANTINED_SHARE", "0.01")
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"PASS  raw_daily_prices.row_rules: 438 rows in {WINDOW}" in out
    assert "quarantined 1 of 439 rows (0.228%, limit 1.00%): high_low_inconsistent 1" in out
    assert "WARN  raw_daily_prices.plausibility" in out and "gap: 1 row(s)" in out
    assert "PASS  raw_corporate_actions.row_rules" in out and "PASS  stock_universe.metadata_rules" in out
    assert "PASS  raw_daily_prices.served_symbols" in out and "PASS  stock_universe.sector_names" in out
    assert out.rstrip().endswith("6 checks, 0 failed")

    monkeypatch.setenv("STOCKYARD_QUALITY_MAX_QUARANTINED_SHARE", "0")
    get_quality_settings.cache_clear()
    assert main(args) == 1
    assert capsys.readouterr().out.rstrip().endswith("6 checks, 1 failed: raw_daily_prices.row_rules")
