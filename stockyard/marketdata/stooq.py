"""Stooq daily bars for US stocks, from its CSV download endpoint."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date

import pandas as pd

from stockyard.marketdata.http import HttpProvider
from stockyard.marketdata.schema import BAR_COLUMNS, LINEAGE_COLUMNS, empty_actions

CSV_URL = "https://stooq.com/q/d/l/"
_CSV_COLUMNS = {
    "Date": "date",
    "Open": "open",
    "High": "high",
    "Low": "low",
    "Close": "close",
    "Volume": "volume",
}


class StooqProvider(HttpProvider):
    """Daily bars from Stooq, which are already split- and dividend-adjusted.

    Because the prices are adjusted at the source, Stooq returns no corporate actions (an empty actions
    frame): applying actions to these bars would adjust them twice. Stooq has no metadata beyond the symbol.
    """

    name = "stooq"

    def fetch_symbol(self, symbol: str, start: date, end: date) -> tuple[pd.DataFrame, pd.DataFrame]:
        params = {"s": f"{symbol.lower()}.us", "i": "d", "d1": f"{start:%Y%m%d}", "d2": f"{end:%Y%m%d}"}
        answer = self.http.get(CSV_URL, params, symbol=symbol)
        if answer.text.strip() == "No data":
            raise answer.error("Stooq has no data: unknown symbol, or no bars in the window")
        if not answer.text.startswith("Date,"):
            raise answer.error("expected Stooq's CSV", quote_body=True)
        with answer.parsing():
            bars = pd.read_csv(io.StringIO(answer.text), dtype=str).reindex(columns=list(_CSV_COLUMNS))
        bars = bars.rename(columns=_CSV_COLUMNS)
        bars["symbol"] = symbol
        bars["source"] = answer.url
        bars["source_row"] = range(1, len(bars) + 1)
        return bars[BAR_COLUMNS + LINEAGE_COLUMNS], empty_actions()

    def metadata(self, symbols: Sequence[str]) -> pd.DataFrame:
        return self._metadata_frame(symbols, lambda _symbol: {})
