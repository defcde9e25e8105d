"""Raw-layer checks against every kind of bad market data, one defect at a time, and nothing lost.

Each case loads the sample market with one injected defect through the real loader, then runs the row check
(quarantined share threshold 0, so any quarantined row fails it) and the plausibility check.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd
import psycopg
import pytest

from stockyard import rules
from stockyard.calendar import trading_days
from stockyard.marketdata.sample import SampleProvider
from stockyard.marketdata.schema import validate_bars
from stockyard.quality.metadata import check_metadata
from stockyard.quality.raw import (
    BAR_SAMPLE_COLUMNS,
    check_action_rows,
    check_price_plausibility,
    check_price_rows,
    price_row_rules,
    row_frame,
)
from stockyard.quality.results import Severity, Window
from stockyard.quality.settings import QualitySettings
from stockyard.quality.suite import run_suite
from tests.quality.defects import CAUGHT_BY, STALE_DAYS, Defect, DefectInjectingProvider, DefectKind
from tests.quality.support import DEFECT_DAY, WINDOW, accounted_rows, load_window, returned_rows

STRICT = QualitySettings(max_quarantined_share=0.0, max_daily_move=0.5, reconciliation_tolerance=0.01)
PRESIDENTS_DAY = date(2024, 2, 19)


@dataclass(frozen=True)
class Expected:
    """Rows set aside on the way in, and loaded rows (or missing days) flagged as warnings, per rule."""

    quarantined: dict[str, int] = field(default_factory=dict)
    warnings: dict[str, int] = field(default_factory=dict)


EXPECTED: dict[DefectKind, Expected] = {
    DefectKind.HIGH_BELOW_LOW: Expected(quarantined={rules.HIGH_LOW_INCONSISTENT: 1}),
    DefectKind.ZERO_PRICE: Expected(quarantined={rules.NON_POSITIVE_PRICE: 1}),
    DefectKind.NEGATIVE_PRICE: Expected(quarantined={rules.NON_POSITIVE_PRICE: 1}),
    DefectKind.MISSING_PRICE: Expected(quarantined={rules.MISSING_PRICE: 1}),
    DefectKind.NEGATIVE_VOLUME: Expected(quarantined={rules.INVALID_VOLUME: 1}),
    # Neither copy can be told to be the right one: both are set aside.
    DefectKind.DUPLICATE_ROW: Expected(quarantined={rules.DUPLICATE_ROW: 2}),
    # One copy loads, the other is recorded: nothing is lost, so even a zero threshold passes.
    DefectKind.DUPLICATE_IDENTICAL: Expected(quarantined={rules.DUPLICATE_IDENTICAL: 1}),
    DefectKind.ZERO_VOLUME: Expected(warnings={rules.ZERO_VOLUME: 1}),
    DefectKind.GAP: Expected(warnings={rules.GAP: 1}),
    DefectKind.STALE_REPEATS: Expected(warnings={rules.STALE_PRICE: STALE_DAYS}),
    DefectKind.UNANNOUNCED_SPLIT: Expected(warnings={rules.UNEXPLAINED_MOVE: 1}),
}
# Defects breaking a rule of the loaded table (an identical copy breaks none once one copy is set aside).
ROW_RULE_DEFECTS = [
    kind
    for kind, expected in EXPECTED.items()
    if expected.quarantined and kind is not DefectKind.DUPLICATE_IDENTICAL
]


@pytest.fixture
def conn(quality_database: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(quality_database, autocommit=True) as connection:
        yield connection


@pytest.fixture
def subject(sample_market: SampleProvider, steady_symbols: list[str]) -> str:
    """A symbol listed throughout the window with no corporate action in it."""
    actions = sample_market.history(steady_symbols, WINDOW.first, WINDOW.last).actions
    return next(symbol for symbol in steady_symbols if symbol not in set(actions["symbol"]))


@pytest.mark.parametrize("kind", list(EXPECTED), ids=str)
def test_each_defect_is_caught_by_its_rule_and_nothing_is_lost(
    kind: DefectKind, conn: psycopg.Connection, sample_market: SampleProvider, subject: str, tmp_path: Path
) -> None:
    expected = EXPECTED[kind]
    provider = DefectInjectingProvider(sample_market, [Defect(kind, subject, DEFECT_DAY)])
    load_window(conn, provider)
    rows = check_price_rows(conn, WINDOW, settings=STRICT, results_dir=tmp_path)
    plausibility = check_price_plausibility(conn, WINDOW, settings=STRICT, results_dir=tmp_path)

    assert rows.quarantine is not None
    assert rows.quarantine.by_rule == expected.quarantined
    assert rows.failing_rules == {}, "loaded rows all keep the row rules"
    lost = {rule: count for rule, count in expected.quarantined.items() if rule != rules.DUPLICATE_IDENTICAL}
    assert rows.passed == (not lost) and rows.quarantine.lost == sum(lost.values())
    assert plausibility.failing_rules == expected.warnings
    assert plausibility.passed == (not expected.warnings) and plausibility.severity is Severity.WARN
    assert set(expected.quarantined) | set(expected.warnings) == {CAUGHT_BY[kind]}

    # The evidence names the defective bar: symbol and date, with provider and partition for quarantine.
    days = trading_days(DEFECT_DAY, WINDOW.last)[: STALE_DAYS if kind is DefectKind.STALE_REPEATS else 1]
    if expected.quarantined:
        sample = rows.quarantine.sample
        assert set(sample["symbol"]) == {subject} and set(sample["date"]) == {DEFECT_DAY}
        assert set(sample["provider"]) == {"sample"} and set(sample["partition_key"]) == {
            WINDOW.partition_key
        }
        assert sample["loaded_at"].notna().all()
    else:
        (finding,) = [finding for finding in plausibility.findings if finding.failing]
        assert finding.sample[["symbol", "date"]].values.tolist() == [
            [subject, day.date().isoformat()] for day in days
        ]
    assert accounted_rows(conn).equals(returned_rows(provider))


def test_a_bar_on_a_closed_day_fails_the_row_check_and_is_not_lost(
    conn: psycopg.Connection, sample_market: SampleProvider, subject: str, tmp_path: Path
) -> None:
    provider = DefectInjectingProvider(
        sample_market, [Defect(DefectKind.NON_TRADING_DAY, subject, PRESIDENTS_DAY)]
    )
    load_window(conn, provider)
    rows = check_price_rows(conn, WINDOW, settings=STRICT, results_dir=tmp_path)

    # Quarantined once the loader applies rules.non_trading_day; until then loaded, and failing the suite.
    assert rows.quarantine is not None
    caught = rows.quarantine.by_rule.get(rules.NON_TRADING_DAY, 0) + rows.failing_rules.get(
        rules.NON_TRADING_DAY, 0
    )
    assert caught == 1 and not rows.passed
    assert check_price_plausibility(conn, WINDOW, settings=STRICT, results_dir=tmp_path).passed
    returned = returned_rows(provider)
    assert returned[PRESIDENTS_DAY] == 1
    assert accounted_rows(conn).equals(returned)


def test_a_clean_market_passes_every_check(
    conn: psycopg.Connection, sample_market: SampleProvider, tmp_path: Path
) -> None:
    load_window(conn, sample_market)
    results = [
        check(conn, WINDOW, settings=STRICT, results_dir=tmp_path)
        for check in (check_price_rows, check_price_plausibility, check_action_rows)
    ]
    results.append(check_metadata(conn, results_dir=tmp_path))
    assert [(result.name, result.passed) for result in results] == [(result.name, True) for result in results]
    assert all(result.results_path is not None and result.results_path.is_file() for result in results)
    assert accounted_rows(conn).equals(returned_rows(sample_market))


def test_the_row_check_fails_only_past_the_quarantined_share(
    conn: psycopg.Connection, sample_market: SampleProvider, steady_symbols: list[str], tmp_path: Path
) -> None:
    settings = QualitySettings(max_quarantined_share=0.01, max_daily_move=0.5, reconciliation_tolerance=0.01)
    one = DefectInjectingProvider(
        sample_market, [Defect(DefectKind.HIGH_BELOW_LOW, steady_symbols[0], DEFECT_DAY)]
    )
    load_window(conn, one)
    result = check_price_rows(conn, WINDOW, settings=settings, results_dir=tmp_path)
    assert result.passed and result.quarantine is not None
    assert result.quarantine.by_rule == {rules.HIGH_LOW_INCONSISTENT: 1}
    assert 0 < result.quarantine.share < 0.01

    days = trading_days(WINDOW.first, WINDOW.last)
    many = DefectInjectingProvider(
        sample_market,
        [
            Defect(DefectKind.HIGH_BELOW_LOW, symbol, day.date())
            for symbol in steady_symbols[:2]
            for day in days[:4]
        ],
    )
    load_window(conn, many)
    result = check_price_rows(conn, WINDOW, settings=settings, results_dir=tmp_path)
    assert result.quarantine is not None and result.quarantine.quarantined == 8
    assert result.quarantine.share > 0.01 and not result.passed


def test_rows_that_bypassed_the_loader_fail_the_suite_under_the_loader_rule_names(
    conn: psycopg.Connection, sample_market: SampleProvider, subject: str, tmp_path: Path
) -> None:
    load_window(conn, sample_market)
    params = {"symbol": subject, "day": DEFECT_DAY, "holiday": PRESIDENTS_DAY}
    for statement in (
        "update raw.daily_prices set high = low / 2 where symbol = %(symbol)s and date = %(day)s",
        "update raw.daily_prices set close = 0 where symbol = %(symbol)s and date = %(day)s + 1",
        "update raw.daily_prices set volume = -5 where symbol = %(symbol)s and date = %(day)s + 2",
        """
        insert into raw.daily_prices (symbol, date, open, high, low, close, volume, provider)
        values (%(symbol)s, %(holiday)s, 10, 11, 9, 10, 100, 'manual')
        """,
    ):
        conn.execute(statement, params)
    result = check_price_rows(conn, WINDOW, settings=STRICT, results_dir=tmp_path)
    assert result.failing_rules == {
        rules.HIGH_LOW_INCONSISTENT: 2,  # the halved high, and the zero close below the low
        rules.NON_POSITIVE_PRICE: 1,
        rules.INVALID_VOLUME: 1,
        rules.NON_TRADING_DAY: 1,
    }
    samples = {finding.rule: finding.sample for finding in result.findings}
    assert samples[rules.NON_TRADING_DAY][["symbol", "date"]].values.tolist() == [
        [subject, PRESIDENTS_DAY.isoformat()]
    ]


@pytest.mark.parametrize("kind", ROW_RULE_DEFECTS, ids=str)
def test_the_suite_fails_a_quarantined_row_under_the_rule_the_loader_gave_it(
    kind: DefectKind, sample_market: SampleProvider, subject: str, tmp_path: Path
) -> None:
    provider = DefectInjectingProvider(sample_market, [Defect(kind, subject, DEFECT_DAY)])
    raw = provider.fetch_symbol(subject, WINDOW.first, WINDOW.last)[0].assign(provider="sample")
    _, rejects = validate_bars(raw)
    (rule,) = set(rejects["rule"])
    findings, _ = run_suite(
        "vocabulary",
        row_frame(raw.assign(date=pd.to_datetime(raw["date"])), WINDOW),
        price_row_rules(),
        severity=Severity.ERROR,
        id_columns=["symbol", "date"],
        sample_columns=["symbol", "date"],
        results_dir=tmp_path,
    )
    # The suite judges every rule, the loader reports the first a row breaks: that one must agree.
    assert {finding.rule: finding.failing for finding in findings}[rule] == len(rejects)


def test_a_bar_on_a_closed_day_and_a_duplicate_show_as_before_in_the_findings_and_the_ge_results(
    tmp_path: Path,
) -> None:
    # The closed-day rule reads a flag, not the dates: users still see the rule, its words and the bar.
    bars = pd.DataFrame(
        {
            "symbol": ["AAA", "AAA", "AAA", "BBB", "BBB"],
            "date": pd.to_datetime(["2024-02-16", PRESIDENTS_DAY, "2024-02-20", "2024-02-20", "2024-02-20"]),
            "open": [10.0, 10.5, 11.0, 20.0, 21.0],
            "high": [11.0, 11.5, 12.0, 21.0, 22.0],
            "low": [9.0, 9.5, 10.0, 19.0, 20.0],
            "close": [10.5, 11.0, 11.5, 20.5, 21.5],
            "volume": [100.0, 200.0, 300.0, 400.0, 500.0],
        }
    )
    findings, path = run_suite(
        "closed_day",
        row_frame(bars, WINDOW),
        price_row_rules(),
        severity=Severity.ERROR,
        id_columns=["symbol", "date"],
        sample_columns=BAR_SAMPLE_COLUMNS,
        results_dir=tmp_path,
    )
    by_rule = {finding.rule: finding for finding in findings}
    closed = by_rule[rules.NON_TRADING_DAY]
    assert (closed.failing, closed.description) == (1, "date is not an NYSE trading day")
    assert closed.sample.columns.tolist() == BAR_SAMPLE_COLUMNS
    assert closed.sample.values.tolist() == [["AAA", "2024-02-19", 10.5, 11.5, 9.5, 11.0, 200.0]]
    duplicate = by_rule[rules.DUPLICATE_ROW]
    assert duplicate.failing == 2
    assert duplicate.sample[["symbol", "date", "open"]].values.tolist() == [
        ["BBB", "2024-02-20", 20.0],
        ["BBB", "2024-02-20", 21.0],
    ]
    assert by_rule[rules.HIGH_LOW_INCONSISTENT].sample.empty
    assert by_rule[rules.HIGH_LOW_INCONSISTENT].sample.columns.tolist() == [
        *BAR_SAMPLE_COLUMNS,
        "body_outside_range",
    ]
    # The saved GE results name failing rows by their dates as the samples show them.
    saved = json.loads(path.read_text())
    closed_result = next(
        result
        for validation in saved["validations"]
        for result in validation["results"]
        if result["expectation_config"]["meta"]["rule"] == rules.NON_TRADING_DAY
    )
    assert closed_result["result"]["partial_unexpected_index_list"] == [
        {"symbol": "AAA", "date": "2024-02-19", "trading_day": False}
    ]


def test_a_day_without_corporate_actions_and_a_window_with_no_rows_pass(
    conn: psycopg.Connection, sample_market: SampleProvider, tmp_path: Path
) -> None:
    load_window(conn, sample_market)
    ex_dates = set(
        sample_market.history(sample_market.symbols(), WINDOW.first, WINDOW.last).actions["ex_date"]
    )
    quiet_day = next(day for day in trading_days(WINDOW.first, WINDOW.last) if day not in ex_dates).date()
    # A daily run's window, and one after everything loaded (nothing to check, nothing failing).
    for window in (Window.of(quiet_day, quiet_day), Window.of(date(2024, 6, 3), date(2024, 6, 7))):
        for check in (check_price_rows, check_price_plausibility, check_action_rows):
            result = check(conn, window, settings=STRICT, results_dir=tmp_path)
            assert result.passed, (window, result.name, result.failing_rules)
