"""The market-data section of the settings (STOCKYARD_MARKET_DATA_*): which provider, from when, which
symbols, and the sample market's parameters. `.env.example` lists them."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from stockyard.settings import StockyardSettings

_FIELDS_RENAMED = [
    "provider",
    "providers",
    "start",
    "symbols",
    "csv_dir",
    "metadata_csv",
    "timeout_seconds",
    "max_retries",
    "request_budget",
]


class MarketDataSettings(StockyardSettings):
    model_config = SettingsConfigDict(env_prefix="STOCKYARD_MARKET_DATA_")
    renamed_variables = {
        **{f"MARKET_DATA_{field.upper()}": field for field in _FIELDS_RENAMED},
        "ALPHAVANTAGE_API_KEY": "alphavantage_api_key",
        "SAMPLE_SEED": "sample_seed",
        "SAMPLE_SYMBOLS": "sample_symbols",
        "SAMPLE_SIGNAL_STRENGTH": "sample_signal_strength",
    }

    provider: str = "sample"
    providers: str | None = Field(
        default=None, description="Fallback chain, e.g. 'yahoo,stooq'; overrides provider."
    )
    start: date = Field(default=date(2019, 1, 2), description="First date of history.")
    symbols: str | None = Field(default=None, description="Comma list for the HTTP providers.")
    csv_dir: Path | None = None
    metadata_csv: Path | None = None
    alphavantage_api_key: str | None = None
    timeout_seconds: float = 20.0
    max_retries: int = 4
    request_budget: int = 500

    # The sample (synthetic) market.
    sample_seed: int = 7
    sample_symbols: int = 110
    sample_signal_strength: float = Field(default=0.02, ge=0.0)

    @field_validator("providers", "symbols")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @property
    def provider_chain(self) -> list[str]:
        chain = self.providers or self.provider
        return [name.strip().lower() for name in chain.split(",") if name.strip()]

    @property
    def symbol_list(self) -> list[str]:
        if not self.symbols:
            return []
        return [s.strip().upper() for s in self.symbols.split(",") if s.strip()]


@lru_cache
def get_market_data_settings() -> MarketDataSettings:
    return MarketDataSettings()
