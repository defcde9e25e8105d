"""Partitions by NYSE trading day: weekdays, with the exchange's holidays excluded.

Today's partition exists from midnight (`end_offset=1`), so the refresh after the close can run it the same
evening; what a run covers by default stops at the last session that has closed (`closed_partition_keys`).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from stockyard.calendar import latest_closed_session, weekday_holidays
from stockyard.quality.results import Window

EXCHANGE_TIMEZONE = "America/New_York"


def trading_day_partitions(start: date) -> dg.TimeWindowPartitionsDefinition:
    # Holidays are known about a year ahead by the calendar library; partitions never run ahead of today.
    holidays = weekday_holidays(start, date.today() + timedelta(days=366))
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule="0 0 * * 1-5",
        start=datetime.combine(start, datetime.min.time()),
        fmt="%Y-%m-%d",
        timezone=EXCHANGE_TIMEZONE,
        exclusions=[datetime.combine(day, datetime.min.time()) for day in holidays],
        end_offset=1,
    )


def closed_partition_keys(partitions_def: dg.PartitionsDefinition, now: datetime | None = None) -> list[str]:
    """The partitions of trading days whose session has closed by `now` (aware; default: now)."""
    last = latest_closed_session(now or datetime.now(ZoneInfo(EXCHANGE_TIMEZONE))).isoformat()
    return [key for key in partitions_def.get_partition_keys() if key <= last]


def partition_window(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> Window:
    """The run's partition window: its first and last trading day (inclusive), and the key that rows without
    a date (a symbol not served) are recorded under. An asset and its checks get the same."""
    keys = context.partition_keys
    # The last partition's day, not the window's end less a day: that falls on a weekend or holiday after a
    # Friday or a day before a holiday, and the window would then be named otherwise than its rows.
    return Window.of(date.fromisoformat(keys[0]), date.fromisoformat(keys[-1]))


def window_dates(context: dg.AssetExecutionContext) -> tuple[date, date, str]:
    """First and last trading day of the run's partition window (inclusive) and a key naming it."""
    window = partition_window(context)
    return window.first, window.last, window.partition_key
