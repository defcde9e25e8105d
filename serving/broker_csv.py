"""Transactions from a broker-style CSV file: a header line, then one transaction per line.

Columns are found by name, in any order and case: date (or trade date), action (or type, kind, transaction
type), symbol (or ticker), quantity (or shares, qty), price, fees (or fee, commission) and amount. Actions:
buy/bought, sell/sold, dividend/div, deposit/cash in/transfer in, withdrawal/cash out/transfer out. Dates as
2024-03-15 or 03/15/2024. Signs are ignored (brokers write sales and withdrawals negative). Every problem is
reported with its line number, and nothing is imported unless every line is good.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError

from serving.account_schemas import TRANSACTION_CREATE, TransactionCreate

MAX_LINES = 10_000
_COLUMNS = {
    "date": ("date", "trade date", "trade_date", "tradedate", "settlement date"),
    "kind": ("action", "type", "kind", "transaction type", "activity"),
    "symbol": ("symbol", "ticker"),
    "quantity": ("quantity", "shares", "qty"),
    "price": ("price", "price per share"),
    "fees": ("fees", "fee", "commission", "commissions"),
    "amount": ("amount", "net amount", "value"),
}
_KINDS = {
    "buy": "buy",
    "bought": "buy",
    "sell": "sell",
    "sold": "sell",
    "dividend": "dividend",
    "div": "dividend",
    "cash dividend": "dividend",
    "deposit": "cash_in",
    "cash in": "cash_in",
    "cash_in": "cash_in",
    "transfer in": "cash_in",
    "withdrawal": "cash_out",
    "cash out": "cash_out",
    "cash_out": "cash_out",
    "transfer out": "cash_out",
}


class CsvProblems(ValueError):
    def __init__(self, problems: list[str]) -> None:
        shown = "; ".join(problems[:20]) + (f"; and {len(problems) - 20} more" if len(problems) > 20 else "")
        super().__init__(shown)
        self.problems = problems


def parse_transactions(text: str) -> list[tuple[int, TransactionCreate]]:
    """(line number, transaction) per line; CsvProblems listing every bad line."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise CsvProblems(["the file is empty"])
    names = [name.strip().lower() for name in header]
    where = {
        field: next((names.index(alias) for alias in aliases if alias in names), None)
        for field, aliases in _COLUMNS.items()
    }
    missing = [field for field in ("date", "kind") if where[field] is None]
    if missing:
        raise CsvProblems([f"line 1: no {' or '.join(missing)} column (the header has {', '.join(names)})"])
    parsed: list[tuple[int, TransactionCreate]] = []
    problems: list[str] = []
    for number, cells in enumerate(reader, start=2):
        if not any(cell.strip() for cell in cells):
            continue
        if len(parsed) + len(problems) >= MAX_LINES:
            raise CsvProblems([f"more than {MAX_LINES} transactions: split the file"])
        try:
            parsed.append((number, _transaction(cells, where)))
        except (ValueError, ValidationError) as error:
            problems.append(f"line {number}: {_reason(error)}")
    if problems:
        raise CsvProblems(problems)
    if not parsed:
        raise CsvProblems(["the file has a header but no transactions"])
    return parsed


def _transaction(cells: list[str], where: dict[str, int | None]) -> TransactionCreate:
    def cell(field: str) -> str:
        index = where[field]
        return cells[index].strip() if index is not None and index < len(cells) else ""

    action = cell("kind").lower()
    kind = _KINDS.get(action)
    if kind is None:
        raise ValueError(f"unknown action {action!r} (one of {', '.join(sorted(set(_KINDS)))})")
    values: dict[str, Any] = {"kind": kind, "trade_date": _date(cell("date"))}
    if kind in ("buy", "sell", "dividend") and cell("symbol"):
        values["symbol"] = cell("symbol")
    if kind in ("buy", "sell"):
        values["quantity"], values["price"] = (
            _number(cell("quantity"), "quantity"),
            _number(cell("price"), "price"),
        )
    else:
        values["amount"] = _number(cell("amount"), "amount")
    if cell("fees"):
        values["fees"] = _number(cell("fees"), "fees")
    return TRANSACTION_CREATE.validate_python(values)


def _date(value: str) -> date:
    for layout in ("%Y-%m-%d", "%m/%d/%Y"):
        try:
            return datetime.strptime(value, layout).date()
        except ValueError:
            continue
    raise ValueError(f"date {value!r} is not YYYY-MM-DD or MM/DD/YYYY")


def _number(value: str, name: str) -> float:
    cleaned = value.replace(",", "").replace("$", "").strip()
    try:
        return abs(float(cleaned))
    except ValueError:
        raise ValueError(f"{name} {value!r} is not a number") from None


def _reason(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'line'}: {problem['msg']}"
            for problem in error.errors()
        )
    return str(error)
