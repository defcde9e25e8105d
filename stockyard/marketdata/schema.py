"""The standard market-data schema every provider returns, and the row-level validation applied on the way in.

Validation never drops a row silently: each rejected row comes back with the rule it broke, where it came
from (file or URL) and its row number there, so the loader can set it aside in quarantine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from stockyard.rules import DUPLICATE_IDENTICAL, DUPLICATE_ROW, non_trading_day

BAR_COLUMNS = ["symbol", "date", "open", "high", "low", "close", "volume"]
ACTION_COLUMNS = ["symbol", "ex_date", "split_ratio", "cash_dividend"]
METADATA_COLUMNS = ["symbol", "name", "sector", "industry", "market_cap", "currency", "exchange"]
# Where a row came from: a file path or URL and the 1-based line/record number there (header excluded).
LINEAGE_COLUMNS = ["source", "source_row"]
REJECT_COLUMNS = ["dataset", "symbol", "date", "source", "source_row", "rule", "detail", "record"]

_KEPT_FIRST_COPY = "an identical copy of an earlier row of this symbol and date, which is loaded"

GICS_SECTORS = (
    "Communication Services",
    "Consumer Discretionary",
    "Consumer Staples",
    "Energy",
    "Financials",
    "Health Care",
    "Industrials",
    "Information Technology",
    "Materials",
    "Real Estate",
    "Utilities",
)


class MarketDataError(Exception):
    """A provider could not serve a symbol or a file; the message names the symbol, the source and the row."""

    def __init__(
        self, message: str, *, symbol: str | None = None, source: str | None = None, row: int | None = None
    ) -> None:
        where = ", ".join(
            part
            for part in (
                f"symbol {symbol}" if symbol else "",
                f"source {source}" if source else "",
                f"row {row}" if row is not None else "",
            )
            if part
        )
        super().__init__(f"{message} ({where})" if where else message)
        self.reason = message
        self.symbol = symbol
        self.source = source
        self.row = row


@dataclass(frozen=True)
class SymbolFailure:
    """A symbol (or a whole file) a provider could not serve at all.

    `message` says what and where; `reason`, only what (failures of many files group by it), or is empty.
    """

    symbol: str
    source: str
    message: str
    provider: str = ""
    reason: str = ""

    @classmethod
    def of(cls, symbol: str, error: MarketDataError, provider: str) -> SymbolFailure:
        return cls(symbol, error.source or "", str(error), provider, error.reason)

    @property
    def why(self) -> str:
        return self.reason or self.message


@dataclass
class History:
    """Bars and corporate actions for a set of symbols, plus everything that was set aside and why.

    `bars` and `actions` carry the standard columns plus `source`, `source_row` and `provider`.
    `rejects` holds rows that broke a rule (REJECT_COLUMNS); `failures`, symbols that could not be served;
    `ignored_columns`, columns of the source no layout uses (not read) and the files that have them.
    """

    bars: pd.DataFrame
    actions: pd.DataFrame
    rejects: pd.DataFrame = field(default_factory=lambda: empty_rejects())
    failures: list[SymbolFailure] = field(default_factory=list)
    ignored_columns: dict[str, list[str]] = field(default_factory=dict)

    @property
    def served_by(self) -> dict[str, str]:
        """Which provider served each symbol (the fallback chain records it per row)."""
        if self.bars.empty:
            return {}
        pairs = self.bars[["symbol", "provider"]].drop_duplicates("symbol")
        return dict(zip(pairs["symbol"], pairs["provider"], strict=True))


def empty_bars() -> pd.DataFrame:
    return _typed_frame(BAR_COLUMNS + LINEAGE_COLUMNS + ["provider"])


def empty_actions() -> pd.DataFrame:
    return _typed_frame(ACTION_COLUMNS + LINEAGE_COLUMNS + ["provider"])


def empty_rejects() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype="object") for column in REJECT_COLUMNS})


def empty_metadata() -> pd.DataFrame:
    return _typed_frame(METADATA_COLUMNS + ["provider"])


_DTYPES: dict[str, str] = {
    "symbol": "object",
    "date": "datetime64[ns]",
    "ex_date": "datetime64[ns]",
    "open": "float64",
    "high": "float64",
    "low": "float64",
    "close": "float64",
    "volume": "int64",
    "split_ratio": "float64",
    "cash_dividend": "float64",
    "market_cap": "float64",
    "source_row": "Int64",
}


def _typed_frame(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype=_DTYPES.get(column, "object")) for column in columns})


def _rejects_from(
    frame: pd.DataFrame, mask: pd.Series, *, dataset: str, rule: str, detail: str, date_column: str
) -> pd.DataFrame:
    bad = frame.loc[mask]
    if bad.empty:
        return empty_rejects()
    record_columns = [c for c in frame.columns if c not in ("source", "source_row", "provider")]
    records = bad[record_columns].astype(object).where(bad[record_columns].notna(), None)
    return pd.DataFrame(
        {
            "dataset": dataset,
            "symbol": bad["symbol"].astype(object).to_numpy(),
            "date": bad[date_column].to_numpy() if date_column in bad else None,
            "source": bad["source"].to_numpy() if "source" in bad else None,
            "source_row": bad["source_row"].to_numpy() if "source_row" in bad else None,
            "rule": rule,
            "detail": detail,
            "record": [{k: _jsonable(v) for k, v in row.items()} for row in records.to_dict("records")],
        }
    )


def _jsonable(value: object) -> object:
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value


def parse_numeric(frame: pd.DataFrame, columns: list[str]) -> tuple[dict[str, pd.Series], pd.Series]:
    """Parse `columns` as float64 without touching `frame`; also a mask of rows holding a non-number."""
    parsed: dict[str, pd.Series] = {}
    not_numeric = pd.Series(False, index=frame.index)
    for column in columns:
        raw = frame[column]
        parsed[column] = pd.to_numeric(raw, errors="coerce").astype("float64")
        suspect = parsed[column].isna() & raw.notna()
        # Only text can fail to parse: the costly string check runs on the few suspects, not every row.
        if suspect.any():
            not_numeric |= suspect & (raw.astype(str).str.strip() != "")
    return parsed, not_numeric


def validate_bars(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split bars into rows that keep the standard schema's promises and rejected rows with their rule.

    Expects the standard columns plus lineage (`source`, `source_row`) and `provider`; `date` may be text.
    Rules, first broken wins: unparseable date, not an NYSE trading day, non-numeric value, missing OHLC,
    non-positive price, negative or fractional volume, high/low inconsistent with open/close, duplicated
    (symbol, date). Of copies of one bar with identical values the first is kept and the others are set
    aside as `duplicate_identical`; bars of one (symbol, date) that differ are all set aside as
    `duplicate_row`, since none can be told to be the right one.
    """
    frame = frame.copy()
    rejects: list[pd.DataFrame] = []

    def set_aside(mask: pd.Series, rule: str, detail: str) -> None:
        nonlocal frame
        if mask.any():
            rejects.append(
                _rejects_from(
                    frame, mask, dataset="daily_prices", rule=rule, detail=detail, date_column="date"
                )
            )
            frame = frame.loc[~mask]

    parsed_dates = pd.to_datetime(frame["date"], errors="coerce", format="mixed")
    set_aside(parsed_dates.isna(), "unparseable_date", "date is missing or not a date")
    frame["date"] = pd.to_datetime(frame["date"], format="mixed").dt.tz_localize(None).dt.normalize()
    set_aside(non_trading_day(frame["date"]), "non_trading_day", "date is not an NYSE trading day")

    parsed, not_numeric = parse_numeric(frame, ["open", "high", "low", "close", "volume"])
    # Set aside before converting, so the quarantined record keeps the text that was not a number.
    set_aside(not_numeric, "not_numeric", "a price or the volume is not a number")
    for column, values in parsed.items():
        frame[column] = values.loc[frame.index]
    set_aside(
        frame[["open", "high", "low", "close"]].isna().any(axis=1),
        "missing_price",
        "open, high, low or close is missing",
    )
    set_aside(
        (frame[["open", "high", "low", "close"]] <= 0).any(axis=1),
        "non_positive_price",
        "a price is zero or negative",
    )
    volume = frame["volume"].fillna(0.0)
    set_aside(
        (volume < 0) | (volume != np.floor(volume)),
        "invalid_volume",
        "volume is negative or not a whole number",
    )
    volume = frame["volume"].fillna(0.0)
    frame["volume"] = volume.astype("int64")
    body_high = frame[["open", "close"]].max(axis=1)
    body_low = frame[["open", "close"]].min(axis=1)
    set_aside(
        (frame["high"] < body_high) | (frame["low"] > body_low),
        "high_low_inconsistent",
        "high is below max(open, close) or low is above min(open, close)",
    )
    key = ["symbol", "date"]
    set_aside(
        _conflicting(frame, key, ["open", "high", "low", "close", "volume"]),
        DUPLICATE_ROW,
        "more than one bar for this symbol and date, with different values",
    )
    # What shares a key now is a copy with the same values.
    set_aside(frame.duplicated(key), DUPLICATE_IDENTICAL, _KEPT_FIRST_COPY)

    all_rejects = pd.concat(rejects, ignore_index=True) if rejects else empty_rejects()
    return frame.reset_index(drop=True), all_rejects


def _conflicting(frame: pd.DataFrame, key: list[str], values: list[str]) -> pd.Series:
    """True for every row sharing its `key` with a row of different `values`."""
    shared_key = frame.duplicated(key, keep=False)
    if not shared_key.any():
        return shared_key
    # Only the few rows sharing a key are compared: the frame may hold millions.
    candidates = frame.loc[shared_key, key + values]
    variants = candidates.drop_duplicates().groupby(key, sort=False).size()
    conflicting = pd.Series(False, index=frame.index)
    conflicting.loc[candidates.index] = pd.MultiIndex.from_frame(candidates[key]).isin(
        variants.index[variants > 1]
    )
    return conflicting


def validate_actions(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split corporate actions into valid rows and rejects (positive split ratio, non-negative dividend, one
    row per symbol and ex-date: identical copies and differing rows are treated as in `validate_bars`)."""
    frame = frame.copy()
    rejects: list[pd.DataFrame] = []

    def set_aside(mask: pd.Series, rule: str, detail: str) -> None:
        nonlocal frame
        if mask.any():
            rejects.append(
                _rejects_from(
                    frame, mask, dataset="corporate_actions", rule=rule, detail=detail, date_column="ex_date"
                )
            )
            frame = frame.loc[~mask]

    set_aside(
        pd.to_datetime(frame["ex_date"], errors="coerce", format="mixed").isna(),
        "unparseable_date",
        "ex-date is missing or not a date",
    )
    frame["ex_date"] = pd.to_datetime(frame["ex_date"], format="mixed").dt.tz_localize(None).dt.normalize()
    parsed, not_numeric = parse_numeric(frame, ["split_ratio", "cash_dividend"])
    set_aside(not_numeric, "not_numeric", "split ratio or dividend is not a number")
    for column, values in parsed.items():
        frame[column] = values.loc[frame.index]
    frame["split_ratio"] = frame["split_ratio"].fillna(1.0)
    frame["cash_dividend"] = frame["cash_dividend"].fillna(0.0)
    set_aside(frame["split_ratio"] <= 0, "invalid_split_ratio", "split ratio must be positive")
    set_aside(frame["cash_dividend"] < 0, "negative_dividend", "cash dividend is negative")
    key = ["symbol", "ex_date"]
    set_aside(
        _conflicting(frame, key, ["split_ratio", "cash_dividend"]),
        DUPLICATE_ROW,
        "more than one corporate action row for this symbol and ex-date, with different values",
    )
    set_aside(frame.duplicated(key), DUPLICATE_IDENTICAL, _KEPT_FIRST_COPY)

    all_rejects = pd.concat(rejects, ignore_index=True) if rejects else empty_rejects()
    return frame.reset_index(drop=True), all_rejects
