"""Typed settings, read from the environment (and `.env`) in one place; `.env.example` lists them."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Services. Unset means: use the embedded PostgreSQL and Redis under `state_dir`.
    database_url: str | None = Field(default=None, description="Warehouse database (PostgreSQL).")
    redis_url: str | None = None
    state_dir: Path = Field(default=PROJECT_ROOT / ".stockyard", alias="STOCKYARD_STATE_DIR")

    # Market data.
    market_data_provider: str = "sample"
    market_data_providers: str | None = Field(
        default=None, description="Fallback chain, e.g. 'yahoo,stooq'; overrides MARKET_DATA_PROVIDER."
    )
    market_data_start: date = date(2019, 1, 2)
    market_data_symbols: str | None = Field(default=None, description="Comma list for the HTTP providers.")
    market_data_csv_dir: Path | None = None
    market_data_metadata_csv: Path | None = None
    alphavantage_api_key: str | None = None
    market_data_timeout_seconds: float = 20.0
    market_data_max_retries: int = 4
    market_data_request_budget: int = 500

    # Sample (synthetic) market.
    sample_seed: int = 7
    sample_symbols: int = 110
    sample_signal_strength: float = Field(default=0.02, ge=0.0)

    @field_validator("market_data_providers", "market_data_symbols", "database_url", "redis_url")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @property
    def provider_chain(self) -> list[str]:
        chain = self.market_data_providers or self.market_data_provider
        return [name.strip().lower() for name in chain.split(",") if name.strip()]

    @property
    def symbol_list(self) -> list[str]:
        if not self.market_data_symbols:
            return []
        return [s.strip().upper() for s in self.market_data_symbols.split(",") if s.strip()]


@lru_cache
def get_settings() -> Settings:
    return Settings()
