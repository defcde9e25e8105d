"""The admins' overrides applied to a provider's universe (stockyard.universe); the ingestion end to end is in
tests/orchestration/test_ingestion.py."""

from __future__ import annotations

from stockyard.universe import fetched_symbols, listed_symbols

OVERRIDES = {"NEWCO": True, "VZ": False, "XOM": True, "GONE": False}


def test_added_symbols_are_listed_once_and_retired_ones_stay_listed() -> None:
    assert listed_symbols(["XOM", "VZ", "T"], OVERRIDES) == ["XOM", "VZ", "T", "NEWCO"]
    assert listed_symbols(["XOM"], {}) == ["XOM"]


def test_retired_symbols_are_not_fetched() -> None:
    assert fetched_symbols(["NEWCO", "T", "VZ", "XOM"], OVERRIDES) == ["NEWCO", "T", "XOM"]
    assert fetched_symbols(["T"], {}) == ["T"]
