"""The quality section of the settings (STOCKYARD_QUALITY_*): thresholds of the quality checks. `.env.example`
lists them."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from stockyard.settings import Share, StockyardSettings


class QualitySettings(StockyardSettings):
    model_config = SettingsConfigDict(env_prefix="STOCKYARD_QUALITY_")
    renamed_variables = {
        f"QUALITY_{field.upper()}": field
        for field in ("max_quarantined_share", "max_daily_move", "reconciliation_tolerance")
    }

    max_quarantined_share: Share = Field(
        default=0.01,
        description="The row check fails when quarantined / (loaded + quarantined) in a window exceeds this.",
    )
    max_daily_move: float = Field(
        default=0.5,
        gt=0.0,
        description="A close more than this far from the previous close adjusted for corporate actions "
        "(0.5: up 50%, or down to 1/1.5) is flagged, either way in log terms.",
    )
    reconciliation_tolerance: float = Field(
        default=0.01, ge=0.0, description="Relative difference between two providers' closes that is flagged."
    )


@lru_cache
def get_quality_settings() -> QualitySettings:
    return QualitySettings()
