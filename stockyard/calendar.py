"""NYSE trading days, from the exchange-calendars library (no hand-kept holiday lists)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache

import exchange_calendars as xcals
import pandas as pd

EXCHANGE = "XNYS"


@lru_cache(maxsize=1)
def _calendar() -> xcals.ExchangeCalendar:
    # The library's default horizon is one year ahead; partitions and generators look a little further.
    return xcals.get_calendar(EXCHANGE, start="1990-01-02", end=date.today() + timedelta(days=2 * 365))


def trading_days(start: date, end: date) -> pd.DatetimeIndex:
    """NYSE sessions from start to end inclusive, as tz-naive midnight timestamps."""
    if end < start:
        return pd.DatetimeIndex([])
    sessions = _calendar().sessions_in_range(pd.Timestamp(start), pd.Timestamp(end))
    return pd.DatetimeIndex(sessions.tz_localize(None) if sessions.tz is not None else sessions)


def is_trading_day(day: date) -> bool:
    return bool(_calendar().is_session(pd.Timestamp(day)))


def weekday_holidays(start: date, end: date) -> list[date]:
    """Weekdays in [start, end] on which NYSE is closed (to exclude from weekday partitions)."""
    weekdays = pd.bdate_range(start, end)
    return sorted(set(weekdays.date) - set(trading_days(start, end).date))


def latest_closed_session(now: datetime) -> date:
    """The last NYSE trading day whose close (an early close included) is at or before `now` (aware)."""
    minute = pd.Timestamp(now).tz_convert("UTC").floor("min")
    return _calendar().minute_to_past_session(minute).date()  # type: ignore[no-any-return]
