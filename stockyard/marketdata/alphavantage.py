"""Alpha Vantage daily bars with dividends and splits (TIME_SERIES_DAILY_ADJUSTED) and company overviews."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, Unpack

import pandas as pd

from stockyard.marketdata.adjustment import infer_missing_splits
from stockyard.marketdata.http import Answer, HttpOptions, HttpProvider
from stockyard.marketdata.schema import ACTION_COLUMNS, BAR_COLUMNS, GICS_SECTORS, LINEAGE_COLUMNS

QUERY_URL = "https://www.alphavantage.co/query"
SERIES_KEY = "Time Series (Daily)"
_BAR_FIELDS = {
    "1. open": "open",
    "2. high": "high",
    "3. low": "low",
    "4. close": "close",
    "6. volume": "volume",
}
_ADJUSTED_CLOSE = "5. adjusted close"
_DIVIDEND = "7. dividend amount"
_SPLIT = "8. split coefficient"

# Alpha Vantage sectors are upper-case and not all GICS. Names that mean one GICS sector map to it; broad
# groupings such as "MANUFACTURING" or "TRADE & SERVICES" have no single GICS sector and are kept as given.
_SECTOR_ALIASES = {
    "TECHNOLOGY": "Information Technology",
    "HEALTHCARE": "Health Care",
    "LIFE SCIENCES": "Health Care",
    "FINANCE": "Financials",
    "FINANCIAL SERVICES": "Financials",
    "BASIC MATERIALS": "Materials",
    "CONSUMER CYCLICAL": "Consumer Discretionary",
    "CONSUMER DEFENSIVE": "Consumer Staples",
}
SECTOR_TO_GICS = {sector.upper(): sector for sector in GICS_SECTORS} | _SECTOR_ALIASES


class AlphaVantageProvider(HttpProvider):
    """Raw OHLCV as traded; dividends and splits from the `7. dividend amount` and `8. split coefficient`,
    plus the splits those miss where `5. adjusted close` and the raw close both show them.

    Needs an API key. It travels only in the query string and is removed from lineage, errors and logs.
    """

    name = "alphavantage"

    def __init__(
        self, symbols: Sequence[str], *, api_key: str | None, **options: Unpack[HttpOptions]
    ) -> None:
        if not api_key:
            raise ValueError("Alpha Vantage needs an API key: set STOCKYARD_MARKET_DATA_ALPHAVANTAGE_API_KEY")
        super().__init__(symbols, **options)
        self._api_key = api_key

    def fetch_symbol(self, symbol: str, start: date, end: date) -> tuple[pd.DataFrame, pd.DataFrame]:
        # outputsize=full is the whole history in one request: cheaper on the quota than a request per window.
        answer, payload = self._query("TIME_SERIES_DAILY_ADJUSTED", symbol, outputsize="full")
        if SERIES_KEY not in payload:
            raise answer.error(f"no {SERIES_KEY!r} in the answer", quote_body=True)
        with answer.parsing():
            return _parse_series(payload[SERIES_KEY], symbol, answer.url)

    def metadata(self, symbols: Sequence[str]) -> pd.DataFrame:
        """Name, sector (mapped to GICS where it means one), industry, market cap, currency and exchange."""
        return self._metadata_frame(symbols, self._overview)

    def _overview(self, symbol: str) -> dict[str, object]:
        answer, overview = self._query("OVERVIEW", symbol)
        # An unknown symbol gets an empty object; absent values come as the text "None".
        known = {key: value for key, value in overview.items() if value not in ("None", "-", "")}
        sector, market_cap = known.get("Sector"), known.get("MarketCapitalization")
        with answer.parsing():
            return {
                "name": known.get("Name"),
                "sector": SECTOR_TO_GICS.get(sector.upper(), sector) if sector is not None else None,
                "industry": known.get("Industry"),
                "market_cap": float(market_cap) if market_cap is not None else None,
                "currency": known.get("Currency"),
                "exchange": known.get("Exchange"),
            }

    def _query(self, function: str, symbol: str, **extra: str) -> tuple[Answer, dict[str, Any]]:
        params = {
            "function": function,
            "symbol": symbol,
            **extra,
            "datatype": "json",
            "apikey": self._api_key,
        }
        return self.http.get_json(QUERY_URL, params, symbol=symbol)


def _parse_series(
    series: dict[str, dict[str, str]], symbol: str, source: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Bars and corporate actions from the daily series; values stay text so validation judges them."""
    rows = pd.DataFrame.from_dict(series, orient="index", dtype="object")
    rows = rows.reindex(columns=[*_BAR_FIELDS, _ADJUSTED_CLOSE, _DIVIDEND, _SPLIT]).rename(
        columns=_BAR_FIELDS
    )
    rows["symbol"] = symbol
    rows["date"] = rows.index
    rows["source"] = source
    rows["source_row"] = range(1, len(rows) + 1)  # position in the answer, which lists newest first
    rows = rows.sort_values("date", ignore_index=True)

    missing = infer_missing_splits(
        rows.rename(columns={_ADJUSTED_CLOSE: "adjusted_close", _DIVIDEND: "dividend", _SPLIT: "split"}),
        symbol,
    )
    # Only a row that misses a split has its text replaced, by the number it should have held.
    rows.loc[missing.index, _SPLIT] = missing
    dividend = pd.to_numeric(rows[_DIVIDEND], errors="coerce")
    split = pd.to_numeric(rows[_SPLIT], errors="coerce")
    # A value that is not a number counts as an action, so validation rejects it rather than it vanishing.
    is_action = (rows[_DIVIDEND].notna() & (dividend != 0)) | (rows[_SPLIT].notna() & (split != 1))
    actions = rows.loc[is_action].rename(
        columns={"date": "ex_date", _DIVIDEND: "cash_dividend", _SPLIT: "split_ratio"}
    )
    return (
        rows[BAR_COLUMNS + LINEAGE_COLUMNS],
        actions[ACTION_COLUMNS + LINEAGE_COLUMNS].reset_index(drop=True),
    )
