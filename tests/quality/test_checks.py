"""The quality checks in Dagster: materialized with the ingestion assets, blocking what is downstream.

`price_consumer` and `features_consumer` stand for the dbt models and ML assets downstream of the checked
assets; the market-data resources below serve the sample market with defects injected.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import pandas as pd
import psycopg
import pytest

from orchestration.ingestion.assets import RAW_DAILY_PRICES, build_price_assets, stock_universe
from orchestration.partitions import trading_day_partitions
from orchestration.quality.checks import build_quality_checks
from orchestration.resources import MarketDataResource, WarehouseResource
from stockyard import rules
from stockyard.marketdata.base import MarketDataProvider
from stockyard.marketdata.chain import FallbackChain
from stockyard.marketdata.settings import MarketDataSettings
from stockyard.quality.settings import QualitySettings
from tests.quality.defects import Defect, DefectInjectingProvider, DefectKind
from tests.quality.features_table import SESSIONS, create_table, features_table, still_market_table
from tests.quality.support import DEFECT_DAY, HISTORY_START, N_SYMBOLS, WINDOW, accounted_rows, returned_rows
from tests.support import throwaway_database

PARTITIONS = trading_day_partitions(HISTORY_START)
PRICE_ASSETS = build_price_assets(PARTITIONS)
FEATURES_KEY = dg.AssetKey(["marts", "fct_stock_features"])
STRICT = QualitySettings(max_quarantined_share=0.0, max_daily_move=0.5, reconciliation_tolerance=0.01)
DEFAULT = QualitySettings(max_quarantined_share=0.01, max_daily_move=0.5, reconciliation_tolerance=0.01)


class InjectedMarketData(MarketDataResource):
    """The sample market with `defects` ('kind symbol YYYY-MM-DD' each) injected."""

    defects: list[str] = []

    def injected(self, provider: MarketDataProvider) -> DefectInjectingProvider:
        parsed = [defect.split() for defect in self.defects]
        return DefectInjectingProvider(
            provider,
            [Defect(DefectKind(kind), symbol, date.fromisoformat(day)) for kind, symbol, day in parsed],
        )

    def provider(self) -> MarketDataProvider:
        return self.injected(super().provider())


class TwoProvidersMarketData(InjectedMarketData):
    """A chain of the clean sample market and one with `defects`: the second only serves what the first
    cannot, but the reconciliation check asks both."""

    def provider(self) -> MarketDataProvider:
        sample = MarketDataResource.provider(self)
        return FallbackChain([sample, self.injected(sample)])


@dg.asset(deps=[RAW_DAILY_PRICES], partitions_def=PARTITIONS, backfill_policy=dg.BackfillPolicy.single_run())
def price_consumer() -> None:
    """Downstream of raw prices."""


def market_data(*defects: Defect, kind: type[InjectedMarketData] = InjectedMarketData) -> InjectedMarketData:
    return kind(
        overrides={
            "providers": "sample",
            "start": HISTORY_START.isoformat(),
            "sample_symbols": str(N_SYMBOLS),
        },
        defects=[f"{defect.kind} {defect.symbol} {defect.day}" for defect in defects],
    )


def materialize(
    database_url: str,
    assets: list[dg.AssetsDefinition],
    checks: list[dg.AssetChecksDefinition],
    resource: MarketDataResource,
    last: date = WINDOW.last,
) -> dg.ExecuteInProcessResult:
    """Materialize `assets` (and their checks) over the window's partitions in one run."""
    return dg.materialize(
        [stock_universe, *assets, *checks],
        selection=assets,
        resources={"market_data": resource, "warehouse_db": WarehouseResource(database_url=database_url)},
        tags={
            "dagster/asset_partition_range_start": WINDOW.first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        },
        raise_on_error=False,
    )


def evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}": evaluation
        for evaluation in result.get_asset_check_evaluations()
    }


def ran(result: dg.ExecuteInProcessResult, asset: dg.AssetsDefinition) -> bool:
    return bool(result.asset_materializations_for_node(asset.op.name))


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A warehouse with the sample universe loaded and checked."""
    with throwaway_database() as url:
        checks = build_quality_checks(tmp_path_factory.mktemp("state"), quality=DEFAULT)
        result = dg.materialize(
            [stock_universe, *checks],
            selection=[stock_universe],
            resources={"market_data": market_data(), "warehouse_db": WarehouseResource(database_url=url)},
        )
        assert result.success
        assert [(key, e.passed) for key, e in evaluations(result).items()] == [
            ("stock_universe:metadata_rules", True),
            ("stock_universe:sector_names", True),
        ]
        yield url


@pytest.fixture(scope="module")
def subject(database_url: str) -> str:
    with psycopg.connect(database_url) as conn:
        symbols: list[str] = [row[0] for row in conn.execute("select symbol from raw.stocks order by symbol")]
    return symbols[1]


def test_checks_are_defined_with_their_blocking_and_severity(tmp_path: Path) -> None:
    one = build_quality_checks(tmp_path, quality=DEFAULT)
    two = build_quality_checks(
        tmp_path,
        market_data=MarketDataSettings(providers="sample,stooq"),
        features=FEATURES_KEY,
        quality=DEFAULT,
    )

    def specs(checks: list[dg.AssetChecksDefinition]) -> dict[str, bool]:
        return {
            f"{spec.asset_key.to_user_string()}:{spec.name}": spec.blocking
            for check in checks
            for spec in check.check_specs
        }

    assert specs(one) == {
        "raw_daily_prices:row_rules": True,
        "raw_daily_prices:plausibility": False,
        # Blocking only when nothing at all was served (it fails with ERROR then, with WARN otherwise).
        "raw_daily_prices:served_symbols": True,
        "raw_corporate_actions:row_rules": True,
        "stock_universe:metadata_rules": True,
        "stock_universe:sector_names": False,
    }
    assert specs(two) == specs(one) | {
        "raw_daily_prices:reconciliation": False,
        "marts/fct_stock_features:feature_rules": True,
    }
    defs = dg.Definitions(
        assets=[stock_universe, PRICE_ASSETS, dg.AssetSpec(FEATURES_KEY, deps=[RAW_DAILY_PRICES])],
        asset_checks=two,
        resources={
            "market_data": market_data(),
            "warehouse_db": WarehouseResource(database_url="postgresql://"),
        },
    )
    dg.Definitions.validate_loadable(defs)


def test_a_clean_window_passes_every_check(database_url: str, tmp_path: Path) -> None:
    checks = build_quality_checks(tmp_path, quality=STRICT)
    result = materialize(database_url, [PRICE_ASSETS, price_consumer], checks, market_data())
    assert result.success and ran(result, price_consumer)
    assert {key: e.passed for key, e in evaluations(result).items()} == {
        "raw_daily_prices:row_rules": True,
        "raw_daily_prices:plausibility": True,
        "raw_daily_prices:served_symbols": True,
        "raw_corporate_actions:row_rules": True,
    }


def test_a_failing_row_check_blocks_downstream_until_the_source_is_fixed(
    database_url: str, subject: str, tmp_path: Path
) -> None:
    checks = build_quality_checks(tmp_path, quality=STRICT)
    defects = [
        Defect(DefectKind.HIGH_BELOW_LOW, subject, DEFECT_DAY),
        Defect(DefectKind.GAP, subject, date(2024, 3, 6)),
    ]
    broken = market_data(*defects)
    result = materialize(database_url, [PRICE_ASSETS, price_consumer], checks, broken)

    assert not result.success and not ran(result, price_consumer)
    checked = evaluations(result)
    rows, plausibility = checked["raw_daily_prices:row_rules"], checked["raw_daily_prices:plausibility"]
    assert not rows.passed and rows.severity is dg.AssetCheckSeverity.ERROR
    metadata = {key: value.value for key, value in rows.metadata.items()}
    assert metadata["quarantined_by_rule"] == {rules.HIGH_LOW_INCONSISTENT: 1}
    assert metadata["quarantined_rows"] == 1 and metadata["failing_rows"] == 0
    assert (
        f"| {rules.HIGH_LOW_INCONSISTENT} | sample | {WINDOW.partition_key} | {subject} | {DEFECT_DAY} |"
        in str(metadata["quarantined_sample"])
    )
    assert Path(str(metadata["ge_validation_result"])).is_file()
    assert not plausibility.passed and plausibility.severity is dg.AssetCheckSeverity.WARN
    assert plausibility.metadata["failing_rows_by_rule"].value == {rules.GAP: 1}
    assert f"| {subject} | 2024-03-06 |" in str(plausibility.metadata["failing_sample"].value)
    with psycopg.connect(database_url) as conn:
        assert accounted_rows(conn).equals(returned_rows(broken.provider()))

    fixed = materialize(database_url, [PRICE_ASSETS, price_consumer], checks, market_data())
    assert fixed.success and ran(fixed, price_consumer)
    assert evaluations(fixed)["raw_daily_prices:row_rules"].metadata["quarantined_rows"].value == 0
    with psycopg.connect(database_url) as conn:
        assert conn.execute("select count(*) from raw.quarantined_rows").fetchone() == (0,)


def test_warnings_show_but_do_not_block(database_url: str, subject: str, tmp_path: Path) -> None:
    checks = build_quality_checks(tmp_path, quality=DEFAULT)
    stale = market_data(Defect(DefectKind.STALE_REPEATS, subject, DEFECT_DAY))
    result = materialize(database_url, [PRICE_ASSETS, price_consumer], checks, stale)
    assert result.success and ran(result, price_consumer)
    checked = evaluations(result)
    assert checked["raw_daily_prices:row_rules"].passed
    plausibility = checked["raw_daily_prices:plausibility"]
    assert not plausibility.passed and plausibility.severity is dg.AssetCheckSeverity.WARN
    assert plausibility.metadata["failing_rows_by_rule"].value == {rules.STALE_PRICE: 3}


def test_reconciliation_reports_disagreeing_providers_without_blocking(
    database_url: str, subject: str, tmp_path: Path
) -> None:
    checks = build_quality_checks(
        tmp_path, market_data=MarketDataSettings(providers="sample,sample"), quality=DEFAULT
    )
    split = Defect(DefectKind.UNANNOUNCED_SPLIT, subject, DEFECT_DAY)
    result = materialize(
        database_url, [PRICE_ASSETS, price_consumer], checks, market_data(split, kind=TwoProvidersMarketData)
    )
    assert result.success and ran(result, price_consumer)
    reconciliation = evaluations(result)["raw_daily_prices:reconciliation"]
    assert not reconciliation.passed and reconciliation.severity is dg.AssetCheckSeverity.WARN
    # The window's last 21 trading days are compared: the subject's closes are halved on all of them.
    assert reconciliation.metadata["failing_rows_by_rule"].value == {"close_disagreement": 21}
    assert reconciliation.metadata["symbols_compared"].value == N_SYMBOLS - 1  # one lists after the window


def features_asset(frame: pd.DataFrame) -> dg.AssetsDefinition:
    @dg.asset(
        key=FEATURES_KEY,
        deps=[RAW_DAILY_PRICES],
        partitions_def=PARTITIONS,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def fct_stock_features(warehouse_db: WarehouseResource) -> None:
        with warehouse_db.connect() as conn:
            create_table(conn, frame)

    return fct_stock_features


@dg.asset(deps=[FEATURES_KEY], partitions_def=PARTITIONS, backfill_policy=dg.BackfillPolicy.single_run())
def features_consumer() -> None:
    """Downstream of the features (the ML assets)."""


def test_a_failing_feature_check_blocks_the_models(database_url: str, tmp_path: Path) -> None:
    checks = build_quality_checks(tmp_path, features=FEATURES_KEY, quality=DEFAULT)
    feature_check = [
        check for check in checks if check.check_keys == {dg.AssetCheckKey(FEATURES_KEY, "feature_rules")}
    ]
    clean = features_table()
    broken = clean.assign(rsi_14=clean["rsi_14"].where(clean["date"] != SESSIONS[-1]))
    # Betas and correlations undefined by rule on every row of the window (3 symbols, 21 sessions).
    undefined = still_market_table()

    for frame, passes in ((clean, True), (broken, False), (undefined, True)):
        features = features_asset(frame)
        result = materialize(
            database_url,
            [features, features_consumer],
            feature_check,
            market_data(),
            last=SESSIONS[-1].date(),
        )
        (evaluation,) = result.get_asset_check_evaluations()
        assert evaluation.passed is passes and ran(result, features_consumer) is passes
        if not passes:
            assert evaluation.metadata["failing_rows_by_rule"].value == {"null_after_warmup[rsi_14]": 3}

    reported = {"undefined_by_rule[beta_63d]": 63, "undefined_by_rule[correlation_63d]": 63}
    assert evaluation.metadata["reported_rows_by_rule"].value == reported
    assert "reported, not failing: undefined_by_rule[beta_63d]: 63 row(s)" in (evaluation.description or "")


def test_a_check_run_on_its_own_checks_the_latest_materialized_window(
    database_url: str, tmp_path: Path
) -> None:
    checks = build_quality_checks(tmp_path, quality=STRICT)
    resources = {"market_data": market_data(), "warehouse_db": WarehouseResource(database_url=database_url)}
    instance = dg.DagsterInstance.ephemeral()
    day = dg.materialize(
        [stock_universe, PRICE_ASSETS, *checks],
        selection=[PRICE_ASSETS],
        resources=resources,
        partition_key="2024-03-27",
        instance=instance,
    )
    alone = dg.materialize(
        [stock_universe, PRICE_ASSETS, *checks],
        selection=dg.AssetSelection.checks_for_assets(PRICE_ASSETS),
        resources=resources,
        instance=instance,
    )
    for result in (day, alone):
        checked = evaluations(result)
        assert set(checked) == {
            "raw_daily_prices:row_rules",
            "raw_daily_prices:plausibility",
            "raw_daily_prices:served_symbols",
            "raw_corporate_actions:row_rules",
        }
        assert {e.metadata["window"].value for e in checked.values()} == {"2024-03-27..2024-03-27"}
        assert all(e.passed for e in checked.values())
