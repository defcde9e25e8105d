"""The rule vocabulary shared by the loader's quarantine and the quality suites, and the load-time rules that
the loader does not have yet. Light on purpose (no Great Expectations), and in neither package, so that
`marketdata.schema.validate_bars` and `quality` (which reads market data) both import it without a cycle.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from stockyard.calendar import trading_days

# Row rules: a bar breaking one is quarantined on the way in (stockyard.marketdata.schema.validate_bars).
MISSING_PRICE = "missing_price"
NON_POSITIVE_PRICE = "non_positive_price"
INVALID_VOLUME = "invalid_volume"
HIGH_LOW_INCONSISTENT = "high_low_inconsistent"
DUPLICATE_ROW = "duplicate_row"
# An identical copy of a row that is loaded: recorded in quarantine for its lineage, but no data is lost.
DUPLICATE_IDENTICAL = "duplicate_identical"
NON_TRADING_DAY = "non_trading_day"
# A symbol or file a provider could not serve at all (recorded undated, under the load's partition key).
PROVIDER_ERROR = "provider_error"
# ... and for corporate actions (validate_actions).
INVALID_SPLIT_RATIO = "invalid_split_ratio"
NEGATIVE_DIVIDEND = "negative_dividend"

# Flags: suspicious but possibly true, so they load and show as warnings.
GAP = "gap"
UNEXPLAINED_MOVE = "unexplained_move"
STALE_PRICE = "stale_price"
ZERO_VOLUME = "zero_volume"

# stockyard.calendar knows NYSE sessions from this day on; earlier dates are not judged.
CALENDAR_START = date(1990, 1, 2)


def non_trading_day(dates: pd.Series) -> pd.Series:
    """True where a date (tz-naive, at midnight) is not an NYSE session.

    Vectorized for the loader: one calendar lookup for the whole span, then a hash join. Dates outside the
    calendar's span (before 1990, or more than a year ahead) and missing dates are not judged here.
    """
    known = dates.dropna()
    if known.empty:
        return pd.Series(False, index=dates.index)
    first = max(known.min().date(), CALENDAR_START)
    last = min(known.max().date(), date.today() + timedelta(days=365))
    if first > last:
        return pd.Series(False, index=dates.index)
    sessions = trading_days(first, last)
    in_span = dates.between(pd.Timestamp(first), pd.Timestamp(last))
    return in_span & ~dates.isin(sessions)
