"""Cross-provider reconciliation: two providers' closes for the same symbols and dates should agree.

Providers differ legitimately (one adjusts history for dividends, another rounds): a disagreement is a
warning for a data engineer to look at, not proof that either is wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg

from stockyard.calendar import trading_days
from stockyard.marketdata.base import MarketDataProvider
from stockyard.quality import expectations as expect
from stockyard.quality.results import QualityResult, Severity, Window
from stockyard.quality.suite import Rule, run_suite

# Each provider is asked again for this many loaded symbols over the window's last trading days: enough to see
# a systematic disagreement, few enough for rate-limited HTTP providers.
RECONCILED_SYMBOLS = 20
RECONCILED_DAYS = 21
SAMPLE_COLUMNS = [
    "symbol",
    "date",
    "reference",
    "provider",
    "reference_close",
    "close",
    "relative_difference",
]


def reconciliation_rules(tolerance: float) -> list[Rule]:
    return [
        Rule(
            "close_disagreement",
            f"the closes differ by more than {tolerance:.2%} of the reference provider's",
            expect.ExpectColumnValuesToBeBetween(column="relative_difference", max_value=tolerance),
        )
    ]


def reconcile_loaded_window(
    conn: psycopg.Connection,
    providers: Sequence[MarketDataProvider],
    window: Window,
    *,
    tolerance: float,
    results_dir: Path,
) -> QualityResult:
    """Reconcile up to RECONCILED_SYMBOLS of the symbols loaded in `window`, spread over the alphabet, on the
    window's last RECONCILED_DAYS trading days."""
    loaded = [
        row[0]
        for row in conn.execute(
            "select distinct symbol from raw.daily_prices where date between %s and %s order by symbol",
            (window.first, window.last),
        )
    ]
    step = max(1, len(loaded) // RECONCILED_SYMBOLS)
    sessions = trading_days(window.first, window.last)[-RECONCILED_DAYS:]
    recent = Window.of(sessions[0].date(), window.last) if len(sessions) else window
    return reconcile_closes(
        providers, loaded[::step][:RECONCILED_SYMBOLS], recent, tolerance=tolerance, results_dir=results_dir
    )


def reconcile_closes(
    providers: Sequence[MarketDataProvider],
    symbols: Sequence[str],
    window: Window,
    *,
    tolerance: float,
    results_dir: Path,
) -> QualityResult:
    """WARN: closes of `symbols` over `window` from each provider after the first (the reference) that differ
    from the reference's by more than `tolerance`, relatively. Each provider is asked directly."""
    if len(providers) < 2:
        raise ValueError(f"reconciliation needs two providers or more, got {len(providers)}")
    reference, *others = providers
    closes = [_closes(provider, symbols, window) for provider in providers]
    pairs = [
        closes[0]
        .merge(other_closes, on=["symbol", "date"], suffixes=("_reference", ""))
        .assign(reference=reference.name, provider=other.name)
        for other, other_closes in zip(others, closes[1:], strict=True)
    ]
    frame = pd.concat(pairs, ignore_index=True).rename(columns={"close_reference": "reference_close"})
    frame["relative_difference"] = np.abs(frame["close"] / frame["reference_close"] - 1)
    frame["date"] = pd.to_datetime(frame["date"]).dt.strftime("%Y-%m-%d")
    name = "raw_daily_prices.reconciliation"
    findings, path = run_suite(
        name,
        frame[SAMPLE_COLUMNS],
        reconciliation_rules(tolerance),
        severity=Severity.WARN,
        id_columns=["symbol", "date", "provider"],
        sample_columns=SAMPLE_COLUMNS,
        results_dir=results_dir,
        window=window,
    )
    metrics: dict[str, int | float | str] = {
        "providers": ", ".join(provider.name for provider in providers),
        "symbols_compared": int(frame["symbol"].nunique()),
        "tolerance": tolerance,
        "closes_served": ", ".join(
            f"{provider.name}: {len(provider_closes)}"
            for provider, provider_closes in zip(providers, closes, strict=True)
        ),
    }
    return QualityResult(name, Severity.WARN, len(frame), findings, path, window, metrics=metrics)


def _closes(provider: MarketDataProvider, symbols: Sequence[str], window: Window) -> pd.DataFrame:
    bars = provider.history(symbols, window.first, window.last).bars
    return bars[["symbol", "date", "close"]]
