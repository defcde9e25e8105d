"""Yahoo Finance daily bars, dividends and splits from the v8 chart endpoint (the one yfinance calls)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd

from stockyard.marketdata.http import Answer, HttpProvider
from stockyard.marketdata.schema import ACTION_COLUMNS, LINEAGE_COLUMNS

CHART_URL = "https://query1.finance.yahoo.com/v8/finance/chart/{symbol}"
_PRICES = ["open", "high", "low", "close"]


class YahooProvider(HttpProvider):
    """Daily bars as traded, with dividends and splits from the chart's events.

    Yahoo's quote arrays are adjusted for every split up to today (not for dividends), and so are its dividend
    amounts: both are multiplied back by the later splits, so the bars are as traded and adjustment happens
    downstream from the corporate actions, as for the other providers. `adjclose` is not used. Bars whose
    prices are all null (Yahoo's placeholder for a missing session) are skipped; a partly null bar goes to
    validation and is rejected there with its reason.
    """

    name = "yahoo"

    def fetch_symbol(self, symbol: str, start: date, end: date) -> tuple[pd.DataFrame, pd.DataFrame]:
        # From a day before `start` (sessions east of UTC open on the previous UTC day) up to now, not to
        # `end`: undoing the split adjustment needs the splits after the window too. Validation trims the
        # rows back to [start, end].
        params = {
            "period1": str(int(datetime.combine(start - timedelta(days=1), time(), tzinfo=UTC).timestamp())),
            "period2": str(int(datetime.now(UTC).timestamp())),
            "interval": "1d",
            "events": "div,splits",
        }
        answer, chart = self._chart(symbol, params)
        with answer.parsing():
            return _as_traded(_bars(chart, symbol, answer.url), _actions(chart, symbol, answer.url))

    def metadata(self, symbols: Sequence[str]) -> pd.DataFrame:
        """Currency and exchange from the chart's meta; Yahoo's chart has no name or sector."""
        return self._metadata_frame(symbols, self._meta_fields)

    def _meta_fields(self, symbol: str) -> dict[str, object]:
        _, chart = self._chart(symbol, {"range": "5d", "interval": "1d"})
        meta = chart.get("meta") or {}
        return {"currency": meta.get("currency"), "exchange": meta.get("exchangeName")}

    def _chart(self, symbol: str, params: Mapping[str, str]) -> tuple[Answer, dict[str, Any]]:
        """The chart result for one symbol; Yahoo's `error` object (e.g. an unknown symbol) raises."""
        answer, payload = self.http.get_json(CHART_URL.format(symbol=symbol), params, symbol=symbol)
        with answer.parsing():
            chart = payload["chart"]
            if not chart.get("result"):
                error = chart.get("error") or {}
                raise answer.error(f"Yahoo has no data: {error.get('description') or 'empty result'}")
            result: dict[str, Any] = chart["result"][0]
        return answer, result


def _local_dates(timestamps: Sequence[int], chart: Mapping[str, Any]) -> pd.Series:
    """Session open times (UTC seconds) as the exchange's local calendar dates."""
    zone = chart.get("meta", {}).get("exchangeTimezoneName") or "UTC"
    moments = pd.to_datetime(pd.Series(timestamps, dtype="int64"), unit="s", utc=True)
    return moments.dt.tz_convert(zone).dt.tz_localize(None).dt.normalize()


def _bars(chart: Mapping[str, Any], symbol: str, source: str) -> pd.DataFrame:
    timestamps: list[int] = chart.get("timestamp") or []
    quote: Mapping[str, list[float | None]] = chart["indicators"]["quote"][0] if timestamps else {}
    columns = {name: quote.get(name) or [None] * len(timestamps) for name in [*_PRICES, "volume"]}
    if any(len(values) != len(timestamps) for values in columns.values()):
        raise ValueError("the quote arrays and the timestamps differ in length")
    bars = pd.DataFrame(
        {
            "symbol": symbol,
            "date": _local_dates(timestamps, chart),
            **{name: pd.Series(values, dtype="float64") for name, values in columns.items()},
            "source": source,
            "source_row": range(1, len(timestamps) + 1),
        }
    )
    return bars.loc[~bars[_PRICES].isna().all(axis=1)].reset_index(drop=True)


def _actions(chart: Mapping[str, Any], symbol: str, source: str) -> pd.DataFrame:
    """One row per ex-date, a dividend and a split on the same day merged (the schema keys on the date)."""
    events = chart.get("events") or {}
    dividends = pd.DataFrame(
        [(event["date"], event["amount"]) for event in (events.get("dividends") or {}).values()],
        columns=["timestamp", "cash_dividend"],
    )
    splits = pd.DataFrame(
        [
            (event["date"], event["numerator"] / event["denominator"])
            for event in (events.get("splits") or {}).values()
        ],
        columns=["timestamp", "split_ratio"],
    )
    actions = dividends.merge(splits, on="timestamp", how="outer").sort_values("timestamp", ignore_index=True)
    actions["ex_date"] = _local_dates(actions["timestamp"].tolist(), chart)
    # Events are keyed by their session's timestamp: point lineage at that bar.
    row_of = {ts: row for row, ts in enumerate(chart.get("timestamp") or [], start=1)}
    actions["source_row"] = pd.array([row_of.get(ts) for ts in actions["timestamp"]], dtype="Int64")
    actions["symbol"] = symbol
    actions["source"] = source
    return actions[ACTION_COLUMNS + LINEAGE_COLUMNS]


def _as_traded(bars: pd.DataFrame, actions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Undo Yahoo's split adjustment of prices, volumes and dividends."""
    splits = actions.dropna(subset=["split_ratio"])
    factor = _later_splits(bars["date"], splits)
    bars[_PRICES] = bars[_PRICES].mul(factor, axis=0)
    bars["volume"] = (bars["volume"] / factor).round()
    actions["cash_dividend"] = actions["cash_dividend"] * _later_splits(actions["ex_date"], splits)
    return bars, actions


def _later_splits(dates: pd.Series, splits: pd.DataFrame) -> pd.Series:
    """For each date, the product of the ratios of the splits going ex after it."""
    factor = pd.Series(1.0, index=dates.index)
    for ex_date, ratio in zip(splits["ex_date"], splits["split_ratio"], strict=True):
        factor = factor.where(dates >= ex_date, factor * ratio)
    return factor
