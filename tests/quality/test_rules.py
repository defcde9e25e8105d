"""The load-time rule the loader is to gain: a bar dated on a day NYSE was closed."""

from __future__ import annotations

import pandas as pd

from stockyard.rules import non_trading_day


def test_weekends_and_holidays_are_not_trading_days() -> None:
    days = pd.Series(["2024-07-03", "2024-07-04", "2024-07-06", "2024-03-29", "2024-04-01", None])
    dates = pd.to_datetime(days)
    # Wednesday, Independence Day, Saturday, Good Friday, Monday, and a missing date (another rule's job).
    assert non_trading_day(dates).tolist() == [False, True, True, True, False, False]


def test_dates_outside_the_calendar_are_not_judged() -> None:
    dates = pd.Series(pd.to_datetime(["1985-01-05", "2099-01-03", "2024-01-06"]))
    assert non_trading_day(dates).tolist() == [False, False, True]
    assert not non_trading_day(pd.Series(pd.to_datetime(["1985-01-05"]))).any()
    assert not non_trading_day(pd.Series([], dtype="datetime64[ns]")).any()
