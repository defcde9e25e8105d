"""The API's section of the settings (STOCKYARD_API_*); `.env.example` lists them."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal, Self

from pydantic import ByteSize, Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from stockyard.api_cache import API_CACHE_PREFIX
from stockyard.api_role import API_ROLE, api_role_url
from stockyard.endpoints import resolve_endpoints
from stockyard.settings import StockyardSettings, get_services_settings

# The signing secret a development checkout runs with; refused anywhere else.
PLACEHOLDER_JWT_SECRET = "change-me-in-production-this-is-not-a-secret"
MIN_JWT_SECRET_BYTES = 32


class ApiSettings(StockyardSettings):
    model_config = SettingsConfigDict(env_prefix="STOCKYARD_API_")

    # Empty: the warehouse of STOCKYARD_SERVICES_DATABASE_URL (or the embedded one), as the read-only role
    # `db_role`, which `stockyard serve` creates there. Given: used as it is, and no role is created.
    database_url: str = ""
    db_role: str = API_ROLE
    # The role's password, for servers that ask for one (the compose file's); empty: none.
    db_password: SecretStr = SecretStr("")
    # Empty: the Redis of STOCKYARD_SERVICES_REDIS_URL, or the embedded one.
    redis_url: str = ""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1)
    # Peers whose X-Forwarded-For names the client (a reverse proxy's addresses, comma-separated, or "*"): the
    # rate limits, the audit log and the access log then see the client rather than the proxy. Anyone else's
    # header is ignored, since a client could name any address in it.
    forwarded_allow_ips: str = "127.0.0.1"
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
    # A new connection PostgreSQL has not accepted by then fails (libpq counts whole seconds, 2 at least).
    db_connect_timeout_seconds: int = Field(default=3, ge=2)
    # The longest a request waits for a free connection of the pool before answering 503.
    db_pool_timeout_seconds: float = Field(default=2.0, gt=0)
    # The longest a request waits on the warehouse in all; a hung server gets a 503 then, not a hung request.
    request_deadline_seconds: float = Field(default=8.0, gt=0)
    # Readiness opens a new connection and gives up on it after this long.
    ready_timeout_seconds: float = Field(default=2.0, gt=0)
    # What a 503 for a busy or hung warehouse tells clients to wait before trying again (Retry-After).
    retry_after_seconds: int = Field(default=5, ge=1)

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

    # 'development' accepts the placeholder signing secret below; anything else refuses to start with it.
    environment: Literal["development", "production"] = "development"
    # Signs the access tokens (HS256): at least 32 random bytes, e.g. `python -c "import secrets;
    # print(secrets.token_urlsafe(48))"`.
    jwt_secret: SecretStr = SecretStr(PLACEHOLDER_JWT_SECRET)
    jwt_issuer: str = "stockyard"
    jwt_audience: str = "stockyard-api"
    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    refresh_token_days: int = Field(default=30, ge=1)
    # Rate limits of the account, portfolio and admin routes (the `limits` notation: "10/minute"), counted
    # in Redis across workers: per signed-in user, per client address, and stricter on the sign-in itself.
    # The market-data GETs are not limited here: they answer from the cache (limit them at the proxy).
    rate_limit_per_user: str = "300/minute"
    rate_limit_per_ip: str = "600/minute"
    rate_limit_login: str = "10/minute"
    # Where the admin's "refresh the data" launches the Dagster job (the webserver's GraphQL API).
    dagster_webserver_url: str = "http://127.0.0.1:3000"
    refresh_job: str = "daily_refresh"

    @model_validator(mode="after")
    def _refuse_a_placeholder_secret(self) -> Self:
        if self.environment == "development":
            return self
        secret = self.jwt_secret.get_secret_value()
        if secret == PLACEHOLDER_JWT_SECRET or len(secret.encode()) < MIN_JWT_SECRET_BYTES:
            raise ValueError(
                f"{self.variable('jwt_secret')} must be set to a random secret of at least "
                f"{MIN_JWT_SECRET_BYTES} bytes when {self.variable('environment')} is {self.environment!r}"
            )
        return self

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    # The warehouse's URL as its owner, when the API connects as `db_role` there: who grants the role.
    _role_owner_url: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _default_to_the_project_services(self) -> Self:
        if not self.database_url or not self.redis_url:
            endpoints = resolve_endpoints(get_services_settings())
            if not self.database_url:
                self._role_owner_url = endpoints.database_url
                self.database_url = api_role_url(
                    endpoints.database_url, self.db_role, self.db_password.get_secret_value()
                )
            self.redis_url = self.redis_url or endpoints.redis_url
        return self

    @property
    def role_owner_url(self) -> str | None:
        """The URL, as its owner, of the warehouse whose read-only role the API uses; None for a given
        database_url."""
        return self._role_owner_url


@lru_cache
def get_api_settings() -> ApiSettings:
    return ApiSettings()
