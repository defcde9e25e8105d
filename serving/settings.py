"""The API's settings (STOCKYARD_API_*), read from the environment and `.env`; `.env.example` lists them."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Self

from pydantic import ByteSize, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from stockyard.api_cache import API_CACHE_PREFIX
from stockyard.services import resolve_endpoints
from stockyard.settings import get_settings


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STOCKYARD_API_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # Empty: the warehouse and Redis of DATABASE_URL / REDIS_URL, or the embedded services.
    database_url: str = ""
    redis_url: str = ""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1)
    # Seconds uvicorn waits for requests in flight on SIGTERM before closing their connections.
    graceful_shutdown_seconds: int = Field(default=10, ge=0)
    # A request whose line and headers are longer is refused with 431 (serving.protocol).
    max_request_head_bytes: ByteSize = Field(default=ByteSize(32 * 1024), ge=1024)
    # Origins whose browser pages may call the API (comma-separated); none by default.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    log_level: str = "info"

    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    # PostgreSQL cancels a statement that runs longer, so a slow query cannot hold a connection.
    db_statement_timeout_ms: int = Field(default=5000, ge=1)

    # How often each worker re-reads the data date, model versions and symbols; the cache keys come from it.
    state_refresh_seconds: float = Field(default=5.0, gt=0)
    cache_prefix: str = API_CACHE_PREFIX
    cache_ttl_seconds: int = Field(default=3600, ge=1)
    # The per-worker in-memory tier in front of Redis; short, as another worker's purge cannot reach it.
    memory_cache_ttl_seconds: int = Field(default=30, ge=1)
    # What that tier may hold in all, in bytes or with a unit ("64MiB"); least recently used answers go first.
    memory_cache_max_bytes: ByteSize = Field(default=ByteSize(64 * 1024**2), ge=1)
    redis_timeout_seconds: float = Field(default=0.25, gt=0)
    # After a Redis error the API answers from PostgreSQL alone for this long before trying Redis again.
    redis_retry_seconds: float = Field(default=5.0, ge=0)
    # The longest a request waits on another worker's computation of the same key (stampede lock).
    cache_lock_seconds: float = Field(default=5.0, gt=0)

    # How long browsers and proxies may reuse a cacheable answer (its Cache-Control max-age).
    http_max_age_seconds: int = Field(default=60, ge=0)

    analysis_part_timeout_seconds: float = Field(default=2.0, gt=0)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @model_validator(mode="after")
    def _default_to_the_project_services(self) -> Self:
        if not self.database_url or not self.redis_url:
            endpoints = resolve_endpoints(get_settings())
            self.database_url = self.database_url or endpoints.database_url
            self.redis_url = self.redis_url or endpoints.redis_url
        return self


@lru_cache
def get_api_settings() -> ApiSettings:
    return ApiSettings()
