"""A portfolio's ledger of transactions (buys, sells, dividends, cash in and out): its rules, what it holds,
and its value history with time-weighted returns, for stockyard.analytics.portfolio's statistics.

Rules of a ledger, checked by `check_ledger` on every change (a new transaction may be dated before others,
so the whole ledger is replayed):
- no date after `today`; quantities, prices and amounts positive, fees not negative;
- no sale of more shares than held on that date (no short sales);
- no cash out of more cash than the portfolio holds on that date.

Within a date, money and shares come in before they go out (cash in, dividends, buys, then sells and cash
out), so the order of one day's lines in a broker's file does not matter. A buy that the cash held does not
cover is funded by a deposit of the shortfall, as when a file lists only trades: the cash never goes below
zero, and that deposit counts as money put in, not as a gain.

Splits apply to the shares held, as in a broker's account, while the ledger keeps quantities as traded: a
split applies at the open of its ex-date, before that day's transactions (which are at post-split prices and
quantities), and multiplies the shares held by its ratio (new shares per old share, 0.5 for a 1-for-2 reverse
split; fractions are kept, not paid out as cash).

Value history: the shares held on each date (after the splits so far) times that date's close as traded, the
last close carried over a day without one, plus cash; a split moves the shares and the close together, and the
value not at all. A transaction or a split dated on a day the price panel lacks (a weekend) counts on the next
date of the panel; a transaction after the panel's last date counts on that last date, while a split after it
is not in the panel's closes yet and does not count. Daily returns are time-weighted: money put in or taken
out on a date is taken to arrive at the start of that day, r_t = V_t / (V_(t-1) + F_t) - 1, so deposits are
not returns.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

# The order of a date's transactions: what comes in before what goes out.
KIND_ORDER = {"cash_in": 0, "dividend": 1, "buy": 2, "sell": 3, "cash_out": 4}
# Shares and cash below this are float rounding, not a real short or overdraft.
TOLERANCE = 1e-9

# Each symbol's splits: (ex-date, new shares per old share).
Splits = Mapping[str, Sequence[tuple[date, float]]]


@dataclass(frozen=True)
class Entry:
    """One transaction of a ledger. `reference` names it in error messages (its id, or its line in a file)."""

    kind: str
    trade_date: date
    symbol: str | None = None
    quantity: float | None = None
    price: float | None = None
    amount: float | None = None
    fees: float = 0.0
    reference: str = ""

    @property
    def cash_flow(self) -> float:
        """What the transaction does to the cash, fees included (a buy's is negative)."""
        if self.kind in ("buy", "sell"):
            gross = (self.quantity or 0.0) * (self.price or 0.0)
            return (gross if self.kind == "sell" else -gross) - self.fees
        signed = -(self.amount or 0.0) if self.kind == "cash_out" else (self.amount or 0.0)
        return signed - self.fees


class LedgerError(ValueError):
    """A transaction breaks a rule of the ledger; the message names it and says why."""


class LedgerConflict(LedgerError):
    """A well-formed transaction the rest of the ledger refuses: a sale of shares not held on its date, or
    more cash taken out than held."""


@dataclass(frozen=True)
class Holdings:
    """Shares per symbol (the non-zero ones), cash, and the money put in and taken out in all."""

    shares: dict[str, float]
    cash: float
    deposited: float
    withdrawn: float


def ordered(entries: Iterable[Entry]) -> list[Entry]:
    return sorted(entries, key=lambda entry: (entry.trade_date, KIND_ORDER[entry.kind]))


def check_ledger(entries: Sequence[Entry], *, today: date, splits: Splits) -> Holdings:
    """Replay the ledger with the splits of its symbols, raising LedgerError at the first transaction that
    breaks a rule; what it holds today, after the splits so far."""
    for entry in entries:
        _check_entry(entry, today)
    # Shares counted as before any split (as value_history counts them): a split changes no count here.
    unsplit: dict[str, float] = {}
    cash = deposited = withdrawn = 0.0
    for entry in ordered(entries):
        if entry.kind in ("buy", "sell"):
            assert entry.symbol is not None and entry.quantity is not None
            factor = _split_factor(splits.get(entry.symbol, ()), entry.trade_date)
            before = unsplit.get(entry.symbol, 0.0) * factor
            held = before + (entry.quantity if entry.kind == "buy" else -entry.quantity)
            if held < -TOLERANCE:
                raise LedgerConflict(
                    f"{entry.reference}: sells {entry.quantity:g} {entry.symbol} on {entry.trade_date}, but "
                    f"only {before:g} are held then (short sales are not supported)"
                )
            unsplit[entry.symbol] = held / factor if abs(held) > TOLERANCE else 0.0
        taken = (entry.amount or 0.0) + entry.fees
        if entry.kind == "cash_out" and taken > cash + TOLERANCE:
            raise LedgerConflict(
                f"{entry.reference}: takes out {taken:,.2f} on {entry.trade_date}, but the portfolio holds "
                f"{cash:,.2f} in cash then"
            )
        cash += entry.cash_flow
        if entry.kind == "cash_in":
            deposited += entry.amount or 0.0
        elif entry.kind == "cash_out":
            withdrawn += entry.amount or 0.0
        if cash < 0:
            # A buy (or fees) the cash did not cover: funded by a deposit of the shortfall.
            deposited -= cash
            cash = 0.0
    return Holdings(
        shares={
            symbol: held * _split_factor(splits.get(symbol, ()), today)
            for symbol, held in unsplit.items()
            if held != 0.0
        },
        cash=cash,
        deposited=deposited,
        withdrawn=withdrawn,
    )


def _check_entry(entry: Entry, today: date) -> None:
    where = entry.reference
    if entry.kind not in KIND_ORDER:
        raise LedgerError(f"{where}: unknown kind {entry.kind!r} (one of {', '.join(KIND_ORDER)})")
    if entry.trade_date > today:
        raise LedgerError(f"{where}: dated {entry.trade_date}, after today ({today})")
    if not math.isfinite(entry.fees) or entry.fees < 0:
        raise LedgerError(f"{where}: fees must be a finite amount >= 0, got {entry.fees:g}")
    trade = entry.kind in ("buy", "sell")
    needed = ("quantity", "price") if trade else ("amount",)
    for name in needed:
        value = getattr(entry, name)
        if value is None or not math.isfinite(value) or value <= 0:
            raise LedgerError(f"{where}: a {entry.kind} needs a {name} > 0, got {value}")
    unexpected = [
        name for name in ("quantity", "price", "amount") if name not in needed and getattr(entry, name)
    ]
    if unexpected:
        raise LedgerError(f"{where}: a {entry.kind} has no {' or '.join(unexpected)}")
    if (entry.symbol is None) != (entry.kind in ("cash_in", "cash_out")):
        wanted = "has no symbol" if entry.symbol is not None else "needs a symbol"
        raise LedgerError(f"{where}: a {entry.kind} {wanted}")


@dataclass(frozen=True)
class ValueHistory:
    """Per date of the panel from the first transaction on: `frame` has holdings_value, cash, total_value
    and flow (money put in, negative when taken out); `holding_values` is dates x symbols."""

    frame: pd.DataFrame
    holding_values: pd.DataFrame

    def time_weighted_returns(self) -> pd.Series:
        """r_t = V_t / (V_(t-1) + F_t) - 1; 0 on a day that starts with nothing invested."""
        total = self.frame["total_value"]
        invested = total.shift(1) + self.frame["flow"]
        returns = (total / invested.where(invested > TOLERANCE) - 1.0).iloc[1:].fillna(0.0)
        returns.name = "return"
        return returns


def value_history(entries: Sequence[Entry], closes: pd.DataFrame, splits: Splits) -> ValueHistory:
    """The ledger's value history on the close panel (dates x symbols, raw closes as traded) with the splits
    of its symbols; every traded symbol must be a column of the panel. Check the ledger first
    (`check_ledger`)."""
    if closes.empty:
        raise ValueError("the close panel is empty: there are no prices to value the portfolio at")
    dates = pd.DatetimeIndex(closes.index)
    traded = sorted({entry.symbol for entry in entries if entry.kind in ("buy", "sell") and entry.symbol})
    missing = [symbol for symbol in traded if symbol not in closes.columns]
    if missing:
        raise ValueError(f"no closes for {', '.join(missing)}")
    first = _panel_position(dates, min(entry.trade_date for entry in entries))
    dates = dates[first:]
    column_of = {symbol: number for number, symbol in enumerate(traded)}
    share_changes = np.zeros((len(dates), len(traded)))
    cash_flows = np.zeros(len(dates))
    flows = np.zeros(len(dates))
    cash = 0.0
    for entry in ordered(entries):
        row = _panel_position(dates, entry.trade_date)
        if entry.kind in ("buy", "sell"):
            # Counted in shares as before any split: the quantity over the splits up to the trade's own date
            # (not its row's: a weekend trade comes before a Monday ex-date).
            symbol = str(entry.symbol)
            quantity = (entry.quantity or 0.0) / _split_factor(splits.get(symbol, ()), entry.trade_date)
            share_changes[row, column_of[symbol]] += quantity if entry.kind == "buy" else -quantity
        cash_flows[row] += entry.cash_flow
        cash += entry.cash_flow
        if entry.kind in ("cash_in", "cash_out"):
            flows[row] += entry.amount if entry.kind == "cash_in" else -(entry.amount or 0.0)
        if cash < 0:
            cash_flows[row] -= cash
            flows[row] -= cash
            cash = 0.0
    # The shares held on each date: those as before any split, times the splits up to that date.
    factors = split_factors(dates, traded, splits)
    positions = factors * np.cumsum(share_changes, axis=0)
    prices = closes.loc[dates, traded].ffill() if traded else pd.DataFrame(index=dates)
    holdings = (positions * prices).where(positions.abs() > TOLERANCE, 0.0).fillna(0.0)
    frame = pd.DataFrame(
        {
            "holdings_value": holdings.sum(axis=1),
            "cash": np.maximum(np.cumsum(cash_flows), 0.0),
            "flow": flows,
        },
        index=dates,
    )
    frame["total_value"] = frame["holdings_value"] + frame["cash"]
    frame.index.name = "date"
    return ValueHistory(frame=frame, holding_values=holdings)


def split_factors(dates: pd.DatetimeIndex, symbols: Sequence[str], splits: Splits) -> pd.DataFrame:
    """Dates x symbols: the shares one share held before every split has become on each date (the product of
    the ratios of the splits up to it); a close times it is continuous across splits."""
    factors = pd.DataFrame(1.0, index=dates, columns=list(symbols))
    for symbol in symbols:
        for ex_date, ratio in splits.get(symbol, ()):
            factors.loc[dates >= pd.Timestamp(ex_date), symbol] *= ratio
    return factors


def _split_factor(symbol_splits: Sequence[tuple[date, float]], day: date) -> float:
    """The product of the ratios of the splits up to `day`."""
    return math.prod(ratio for ex_date, ratio in symbol_splits if ex_date <= day)


def _panel_position(dates: pd.DatetimeIndex, day: date) -> int:
    """The row of `day` in the panel: its own date, else the next one, else the last."""
    return min(int(dates.searchsorted(pd.Timestamp(day))), len(dates) - 1)
