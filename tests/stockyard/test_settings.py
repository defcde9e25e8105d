"""The settings pattern: every section's variables listed in .env.example and nothing else, old names read
with a warning naming the new one, and `.env` read from the project root wherever a command starts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stockyard.marketdata.settings import MarketDataSettings
from stockyard.quality.settings import QualitySettings
from stockyard.settings import PROJECT_ROOT, ServicesSettings, StockyardSettings
from tests.stockyard.support import PACKAGES, example_variables, sections


def test_every_section_is_a_subclass_of_the_base_found_here() -> None:
    defined = {
        match
        for package in PACKAGES
        for path in (PROJECT_ROOT / package).rglob("*.py")
        for match in re.findall(r"^class (\w+)\(StockyardSettings\)", path.read_text(), flags=re.MULTILINE)
    }
    assert {section.__name__ for section in sections()} == defined


def test_env_example_lists_every_variable_of_every_section_and_no_other_setting() -> None:
    fields = {section.variable(field) for section in sections() for field in section.model_fields}
    listed = example_variables()
    assert fields - listed == set(), "settings missing from .env.example"
    # Besides the settings: the test harness's servers, the compose file's, the first admin's password (read
    # once by `stockyard users create-admin`), dbt's profile and MLflow's and Dagster's own switches.
    profile = (PROJECT_ROOT / "dbt_project" / "profiles.yml").read_text()
    dbt = set(re.findall(r"env_var\('(STOCKYARD_PG_\w+)'", profile))
    not_settings = (
        "STOCKYARD_TEST_",
        "STOCKYARD_COMPOSE_",
        "STOCKYARD_ADMIN_PASSWORD",
        "MLFLOW_",
        "DAGSTER_",
    )
    others = {name for name in listed - fields if name.startswith(not_settings)}
    assert listed - fields - others == dbt


def test_every_section_has_its_own_prefix_and_every_old_name_a_field() -> None:
    prefixes = [section.model_config.get("env_prefix") for section in sections()]
    assert all(re.fullmatch(r"STOCKYARD_[A-Z_]+_", str(prefix)) for prefix in prefixes)
    assert len(set(prefixes)) == len(prefixes)
    new_names = {section.variable(field) for section in sections() for field in section.model_fields}
    for section in sections():
        assert set(section.renamed_variables.values()) <= set(section.model_fields), section.__name__
        assert not set(section.renamed_variables) & new_names


def test_an_old_name_still_sets_its_field_with_a_warning_naming_the_new_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@old.example/warehouse")
    with pytest.warns(FutureWarning, match="DATABASE_URL is deprecated: set STOCKYARD_SERVICES_DATABASE_URL"):
        assert ServicesSettings(_env_file=None).database_url == "postgresql://u@old.example/warehouse"

    env_file = tmp_path / ".env"
    env_file.write_text("QUALITY_MAX_DAILY_MOVE=0.3\nSAMPLE_SYMBOLS=12\n")
    with pytest.warns(FutureWarning, match="set STOCKYARD_QUALITY_MAX_DAILY_MOVE instead"):
        assert QualitySettings(_env_file=env_file).max_daily_move == 0.3
    with pytest.warns(FutureWarning, match="set STOCKYARD_MARKET_DATA_SAMPLE_SYMBOLS instead"):
        assert MarketDataSettings(_env_file=env_file).sample_symbols == 12


def test_a_new_name_wins_over_the_old_one_silently(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://old:6379/0")
    monkeypatch.setenv("STOCKYARD_SERVICES_REDIS_URL", "redis://new:6379/0")
    assert ServicesSettings(_env_file=None).redis_url == "redis://new:6379/0"


def test_dotenv_is_read_from_the_project_root_not_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert (PROJECT_ROOT / "pyproject.toml").is_file()
    assert StockyardSettings.model_config.get("env_file") == PROJECT_ROOT / ".env"
    (tmp_path / ".env").write_text("STOCKYARD_QUALITY_MAX_DAILY_MOVE=0.3\n")
    monkeypatch.chdir(tmp_path)
    assert QualitySettings().max_daily_move == QualitySettings(_env_file=None).max_daily_move
