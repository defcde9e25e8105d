"""The automation section of the settings (STOCKYARD_AUTOMATION_*): when the schedules fire and how long the
signal-decay sensor waits between retrainings. `.env.example` lists them."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from stockyard.settings import StockyardSettings


class AutomationSettings(StockyardSettings):
    model_config = SettingsConfigDict(env_prefix="STOCKYARD_AUTOMATION_")

    daily_refresh_cron: str = Field(
        default="0 18 * * 1-5",
        description="When the daily refresh runs, in New York time: after the close, once providers have the "
        "day's bars. A tick on a day NYSE is closed skips.",
    )
    retrain_cron: str = Field(default="0 6 * * 6", description="When the weekly retraining runs (New York).")
    retrain_cooldown_hours: float = Field(
        default=72.0,
        ge=0.0,
        description="The signal-decay sensor launches no retraining while one (of any trigger) started less "
        "than this long ago, so a signal that stays weak cannot make it loop.",
    )
    sensor_interval_seconds: int = Field(
        default=60, ge=5, description="How often the daemon evaluates the sensors."
    )


@lru_cache
def get_automation_settings() -> AutomationSettings:
    return AutomationSettings()
