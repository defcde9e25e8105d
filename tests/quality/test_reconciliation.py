"""Cross-provider reconciliation of closes."""

from __future__ import annotations

from pathlib import Path

import pytest

from stockyard.calendar import trading_days
from stockyard.marketdata.sample import SampleProvider
from stockyard.quality.reconciliation import reconcile_closes
from tests.quality.defects import Defect, DefectInjectingProvider, DefectKind
from tests.quality.support import DEFECT_DAY, WINDOW


def test_agreeing_providers_pass(
    sample_market: SampleProvider, steady_symbols: list[str], tmp_path: Path
) -> None:
    result = reconcile_closes(
        [sample_market, sample_market], steady_symbols[:3], WINDOW, tolerance=0.01, results_dir=tmp_path
    )
    assert result.passed and result.rows == 3 * len(trading_days(WINDOW.first, WINDOW.last))


def test_closes_apart_by_more_than_the_tolerance_are_reported(
    sample_market: SampleProvider, steady_symbols: list[str], tmp_path: Path
) -> None:
    halved = DefectInjectingProvider(
        sample_market, [Defect(DefectKind.UNANNOUNCED_SPLIT, steady_symbols[1], DEFECT_DAY)]
    )
    result = reconcile_closes(
        [sample_market, halved], steady_symbols[:3], WINDOW, tolerance=0.01, results_dir=tmp_path
    )
    days_apart = len(trading_days(DEFECT_DAY, WINDOW.last))
    assert not result.passed and result.failing_rules == {"close_disagreement": days_apart}
    (finding,) = result.findings
    assert set(finding.sample["symbol"]) == {steady_symbols[1]}
    assert finding.sample["relative_difference"].round(2).eq(0.5).all()


def test_reconciliation_needs_two_providers(sample_market: SampleProvider, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="two providers"):
        reconcile_closes([sample_market], ["X"], WINDOW, tolerance=0.01, results_dir=tmp_path)
