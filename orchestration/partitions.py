"""Partitions by NYSE trading day: weekdays, with the exchange's holidays excluded."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import dagster as dg

from stockyard.calendar import weekday_holidays

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
    )


def window_dates(context: dg.AssetExecutionContext) -> tuple[date, date, str]:
    """First and last trading day of the run's partition window (inclusive) and a key naming it."""
    window = context.partition_time_window
    first = window.start.date()
    last = (window.end - timedelta(days=1)).date()
    keys = context.partition_keys
    key = keys[0] if len(keys) == 1 else f"{keys[0]}...{keys[-1]}"
    return first, last, key
