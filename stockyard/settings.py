"""One settings pattern: each concern reads its own section of the environment (and of `.env` at the project
root), `STOCKYARD_<SECTION>_<FIELD>`, through one class derived from `StockyardSettings` and one cached
getter beside it. `.env.example` lists every variable. The services section lives here; the others with the
code that owns them (market data, quality, products, ML, the API).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

_PACKAGE_DIR = Path(__file__).resolve().parent
# The repository root, the folder holding pyproject.toml, wherever a command starts; the package's parent
# for an installed package, which has none.
PROJECT_ROOT = next(
    (folder for folder in _PACKAGE_DIR.parents if (folder / "pyproject.toml").is_file()), _PACKAGE_DIR.parent
)


# A setting that is a share of something, from 0 to 1.
Share = Annotated[float, Field(ge=0.0, le=1.0)]


class StockyardSettings(BaseSettings):
    """The base of every section. A section sets `env_prefix` and may list, in `renamed_variables`, the names
    its variables had before (old variable -> field): for one release an old name still sets its field, with a
    FutureWarning naming the new variable; once the new one is set, the old one is not read."""

    model_config = SettingsConfigDict(
        env_file=PROJECT_ROOT / ".env", env_file_encoding="utf-8", extra="ignore"
    )
    renamed_variables: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def variable(cls, field: str) -> str:
        """The environment variable of one of the section's fields."""
        return f"{cls.model_config.get('env_prefix', '')}{field}".upper()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The old names come last: a new name, in the environment or `.env`, wins over them.
        renamed = _RenamedVariables(settings_cls, env_settings, dotenv_settings)
        return init_settings, env_settings, dotenv_settings, renamed, file_secret_settings


class _RenamedVariables(PydanticBaseSettingsSource):
    """The values a section's old variable names give, read from the environment and `.env`, each with a
    FutureWarning: a warning for the people who set variables, which Python shows by default."""

    def __init__(self, settings_cls: type[BaseSettings], *sources: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._sources = [source for source in sources if isinstance(source, EnvSettingsSource)]

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ reads the old names directly, not field by field

    def __call__(self) -> dict[str, Any]:
        assert issubclass(self.settings_cls, StockyardSettings)
        values: dict[str, Any] = {}
        for old, field in self.settings_cls.renamed_variables.items():
            new = self.settings_cls.variable(field)
            value = self._read(old)
            if value is None or self._read(new) is not None:
                continue
            values[field] = value
            warnings.warn(
                f"{old} is deprecated: set {new} instead ({old} stops working in the next release)",
                FutureWarning,
                stacklevel=2,
            )
        return values

    def _read(self, variable: str) -> str | None:
        for source in self._sources:
            value = source.env_vars.get(variable if source.case_sensitive else variable.lower())
            if value is not None:
                return value
        return None


class ServicesSettings(StockyardSettings):
    """Where PostgreSQL and Redis run and where the project keeps its state. Unset URLs mean: the embedded
    PostgreSQL and Redis under `state_dir`."""

    model_config = SettingsConfigDict(env_prefix="STOCKYARD_SERVICES_")
    renamed_variables = {
        "DATABASE_URL": "database_url",
        "REDIS_URL": "redis_url",
        "STOCKYARD_STATE_DIR": "state_dir",
    }

    database_url: str | None = Field(default=None, description="Warehouse database (PostgreSQL).")
    redis_url: str | None = None
    state_dir: Path = PROJECT_ROOT / ".stockyard"

    @field_validator("database_url", "redis_url")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value or None


@lru_cache
def get_services_settings() -> ServicesSettings:
    return ServicesSettings()
