"""The ledger's rules (stockyard.analytics.ledger.check_ledger) on plain entries, without the API."""

from __future__ import annotations

from datetime import date

import pytest

from stockyard.analytics.ledger import Entry, LedgerConflict, LedgerError, check_ledger

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
    holdings = check_ledger([sell(4, date(2024, 3, 5)), buy(10, fees=1.0)], today=TODAY)
    assert holdings.shares == {"AAA": 6}
    assert holdings.deposited == pytest.approx(101.0)  # the buy and its fees, uncovered by any cash
    assert holdings.cash == pytest.approx(48.0)


def test_selling_everything_leaves_no_position() -> None:
    assert check_ledger([buy(10), sell(10, date(2024, 3, 2))], today=TODAY).shares == {}


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
        check_ledger(entries, today=TODAY)
    # Only balances gone negative conflict with the rest of the ledger; the API answers them 409.
    conflict = "are held" in message or "in cash" in message
    assert isinstance(raised.value, LedgerConflict) is conflict
