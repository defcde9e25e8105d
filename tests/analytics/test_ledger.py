"""The ledger's rules (stockyard.analytics.ledger.check_ledger) and its value history across splits, on plain
entries, without the API."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from stockyard.analytics.ledger import (
    Entry,
    LedgerConflict,
    LedgerError,
    check_ledger,
    split_factors,
    value_history,
)

TODAY = date(2024, 6, 28)
DAY = date(2024, 3, 1)


def buy(quantity: float, day: date = DAY, **fields: object) -> Entry:
    return Entry(
        kind="buy", trade_date=day, symbol="AAA", quantity=quantity, price=10.0, reference="buy", **fields
    )  # type: ignore[arg-type]


def sell(quantity: float, day: date = DAY) -> Entry:
    return Entry(kind="sell", trade_date=day, symbol="AAA", quantity=quantity, price=12.0, reference="sell")


def test_holdings_replay_in_date_order_and_a_buy_without_cash_counts_as_a_deposit() -> None:
    # Given out of order: the sell is on a later day than the buy.
    holdings = check_ledger([sell(4, date(2024, 3, 5)), buy(10, fees=1.0)], today=TODAY, splits={})
    assert holdings.shares == {"AAA": 6}
    assert holdings.deposited == pytest.approx(101.0)  # the buy and its fees, uncovered by any cash
    assert holdings.cash == pytest.approx(48.0)


def test_selling_everything_leaves_no_position() -> None:
    assert check_ledger([buy(10), sell(10, date(2024, 3, 2))], today=TODAY, splits={}).shares == {}


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([buy(10), sell(11, date(2024, 3, 2))], "only 10 are held"),
        ([sell(1)], "only 0 are held"),
        ([buy(1, date(2024, 7, 1))], "after today"),
        ([buy(-1)], "needs a quantity > 0"),
        ([buy(1, fees=-1.0)], "fees must be"),
        ([Entry(kind="cash_out", trade_date=DAY, amount=5.0, reference="out")], "holds 0.00 in cash"),
        ([Entry(kind="cash_in", trade_date=DAY, amount=5.0, symbol="AAA", reference="in")], "has no symbol"),
        ([Entry(kind="dividend", trade_date=DAY, amount=5.0, reference="div")], "needs a symbol"),
        ([Entry(kind="gift", trade_date=DAY, reference="gift")], "unknown kind"),
    ],
)
def test_a_broken_rule_names_the_transaction_and_why(entries: list[Entry], message: str) -> None:
    with pytest.raises(LedgerError, match=message) as raised:
        check_ledger(entries, today=TODAY, splits={})
    # Only balances gone negative conflict with the rest of the ledger; the API answers them 409.
    conflict = "are held" in message or "in cash" in message
    assert isinstance(raised.value, LedgerConflict) is conflict


# A 4-for-1 split of AAA going ex on a Monday.
EX_DATE = date(2024, 4, 8)
FOUR_FOR_ONE = {"AAA": [(EX_DATE, 4.0)]}


def test_a_split_multiplies_the_shares_held_before_the_trades_of_its_ex_date() -> None:
    before = date(2024, 4, 5)
    # The sale on the ex-date is of post-split shares: the split comes first.
    assert check_ledger([buy(100, before), sell(400, EX_DATE)], today=TODAY, splits=FOUR_FOR_ONE).shares == {}
    holdings = check_ledger([buy(100, before), sell(150, date(2024, 4, 9))], today=TODAY, splits=FOUR_FOR_ONE)
    assert holdings.shares == {"AAA": 250}
    # Splits of symbols not held, or going ex after today, change nothing.
    later = {"AAA": [(date(2024, 7, 1), 4.0)], "BBB": [(EX_DATE, 2.0)]}
    assert check_ledger([buy(100, before)], today=TODAY, splits=later).shares == {"AAA": 100}


def test_a_sale_of_one_share_more_than_the_split_made_is_refused() -> None:
    with pytest.raises(LedgerConflict, match="sells 401 AAA on 2024-04-09, but only 400 are held then"):
        check_ledger(
            [buy(100, date(2024, 4, 5)), sell(401, date(2024, 4, 9))], today=TODAY, splits=FOUR_FOR_ONE
        )
    # The day before the ex-date, the 100 bought are all there is.
    with pytest.raises(LedgerConflict, match="only 100 are held"):
        check_ledger(
            [buy(100, date(2024, 4, 1)), sell(101, date(2024, 4, 5))], today=TODAY, splits=FOUR_FOR_ONE
        )


def test_a_reverse_split_halves_the_shares_held() -> None:
    one_for_two = {"AAA": [(EX_DATE, 0.5)]}
    holdings = check_ledger([buy(11, date(2024, 4, 5))], today=TODAY, splits=one_for_two)
    assert holdings.shares == {"AAA": 5.5}  # fractions are kept
    with pytest.raises(LedgerConflict, match="only 5.5 are held"):
        check_ledger([buy(11, date(2024, 4, 5)), sell(6, EX_DATE)], today=TODAY, splits=one_for_two)


# Closes as traded around EX_DATE: the price moves by the split's ratio on the ex-date, and by nothing else.
DATES = pd.DatetimeIndex(["2024-04-03", "2024-04-04", "2024-04-05", "2024-04-08", "2024-04-09"])


def closes_around_split(ratio: float) -> pd.DataFrame:
    return pd.DataFrame({"AAA": [100.0, 100.0, 100.0, 100.0 / ratio, 100.0 / ratio]}, index=DATES)


@pytest.mark.parametrize("ratio", [2.0, 0.5], ids=["2-for-1", "1-for-2"])
def test_the_value_is_continuous_across_a_split(ratio: float) -> None:
    history = value_history(
        [buy(10, date(2024, 4, 3))], closes_around_split(ratio), {"AAA": [(EX_DATE, ratio)]}
    )

    assert list(history.frame["total_value"]) == pytest.approx([1000.0] * len(DATES))
    assert list(history.time_weighted_returns()) == pytest.approx([0.0] * (len(DATES) - 1))


def test_a_sale_the_saturday_before_an_ex_date_counts_on_it_in_shares_of_before_the_split() -> None:
    splits = {"AAA": [(EX_DATE, 2.0)]}
    entries = [buy(10, date(2024, 4, 3)), sell(4, date(2024, 4, 6))]
    held = check_ledger(entries, today=TODAY, splits=splits).shares

    history = value_history(entries, closes_around_split(2.0), splits)

    assert held == {"AAA": 12}
    assert list(history.holding_values["AAA"]) == pytest.approx([1000, 1000, 1000, 12 * 50, 12 * 50])


def test_closes_times_the_split_factors_are_continuous_across_splits() -> None:
    # The correlation of the holdings is of these: closes as traded would show the split as a fall.
    splits = {"AAA": [(EX_DATE, 2.0), (date(2024, 4, 9), 0.5)]}
    closes = pd.DataFrame({"AAA": [100.0, 100.0, 100.0, 50.0, 100.0], "BBB": [7.0] * len(DATES)}, index=DATES)

    assert (closes * split_factors(DATES, ["AAA", "BBB"], splits)).eq(closes.iloc[0]).all().all()
