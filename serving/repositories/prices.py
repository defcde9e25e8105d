"""Price history for one or many symbols in one statement, raw or adjusted, daily or resampled."""

from __future__ import annotations

from datetime import date

from sqlalchemy import ColumnElement, Float, Select, Subquery, Text, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import CollectionAggregate

from serving.schemas import Adjustment, Interval, PriceSeries, SymbolLatestPrice
from serving.tables import fct_daily_prices, fct_latest_prices

_PERIOD = {Interval.weekly: "week", Interval.monthly: "month"}


def any_of(symbols: list[str]) -> CollectionAggregate[bool]:
    """`= any(array)`: one bound array whatever the number of symbols."""
    return any_(bindparam(None, symbols, type_=ARRAY(Text)))


def _ohlcv(adjustment: Adjustment) -> dict[str, ColumnElement[float]]:
    prefix = "adj_" if adjustment is Adjustment.adjusted else ""
    return {name: fct_daily_prices.c[prefix + name] for name in ("open", "high", "low", "close", "volume")}


def _bars(
    symbols: list[str], *, start: date, end: date, adjustment: Adjustment, interval: Interval
) -> Subquery:
    """Bars of `symbols` in [start, end]: one index range scan per symbol, resampled when asked."""
    prices = fct_daily_prices
    columns = _ohlcv(adjustment)
    in_range = (prices.c.symbol == any_of(symbols), prices.c.date.between(start, end))
    if interval is Interval.daily:
        return (
            select(prices.c.symbol, prices.c.date, *(column.label(name) for name, column in columns.items()))
            .where(*in_range)
            .subquery("bars")
        )
    period = func.date_trunc(_PERIOD[interval], prices.c.date)

    def first(column: ColumnElement[float], *, last: bool = False) -> ColumnElement[float]:
        order = prices.c.date.desc() if last else prices.c.date.asc()
        return func.array_agg(aggregate_order_by(column, order), type_=ARRAY(Float))[1]

    return (
        select(
            prices.c.symbol,
            func.max(prices.c.date).label("date"),
            first(columns["open"]).label("open"),
            func.max(columns["high"]).label("high"),
            func.min(columns["low"]).label("low"),
            first(columns["close"], last=True).label("close"),
            func.sum(columns["volume"]).label("volume"),
        )
        .where(*in_range)
        .group_by(prices.c.symbol, period)
        .subquery("bars")
    )


def prices_statement(
    symbols: list[str], *, start: date, end: date, adjustment: Adjustment, interval: Interval
) -> Select[tuple[object, ...]]:
    """One row per symbol with its bars as a JSON array in date order.

    Built by PostgreSQL, so the API parses one JSON document per symbol instead of handling a row per bar,
    which for hundreds of symbols costs more than the query.
    """
    bars = _bars(symbols, start=start, end=end, adjustment=adjustment, interval=interval)
    bar = func.json_build_object(
        *(
            part
            for name in ("date", "open", "high", "low", "close", "volume")
            for part in (name, bars.c[name])
        )
    )
    return select(bars.c.symbol, func.json_agg(aggregate_order_by(bar, bars.c.date)).label("bars")).group_by(
        bars.c.symbol
    )


async def price_series(
    conn: AsyncConnection,
    *,
    symbols: list[str],
    start: date,
    end: date,
    adjustment: Adjustment,
    interval: Interval,
) -> list[PriceSeries]:
    """One series per symbol, in the order given (empty when the symbol has no bars in the range)."""
    statement = prices_statement(symbols, start=start, end=end, adjustment=adjustment, interval=interval)
    bars = {row.symbol: row.bars for row in await conn.execute(statement)}
    return [
        PriceSeries.model_validate({"symbol": symbol, "bars": bars.get(symbol, [])}) for symbol in symbols
    ]


def latest_prices_statement(symbols: list[str]) -> Select[tuple[object, ...]]:
    return select(fct_latest_prices).where(fct_latest_prices.c.symbol == any_of(symbols))


async def latest_prices(conn: AsyncConnection, *, symbols: list[str]) -> list[SymbolLatestPrice]:
    rows = {row["symbol"]: row for row in (await conn.execute(latest_prices_statement(symbols))).mappings()}
    return [SymbolLatestPrice.model_validate(dict(rows[symbol])) for symbol in symbols if symbol in rows]
