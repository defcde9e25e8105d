"""Data-quality asset checks: the Great Expectations suites of `stockyard.quality`, run by Dagster.

ERROR checks are blocking: when one fails, the assets downstream of its asset do not run in that run (and
the run fails). WARN checks show in the UI and
let everything run. A check on a partitioned asset validates the run's partition window; run on its own, it
validates the window of the latest materialization of raw_daily_prices.

Each result carries the failing rows per rule, a sample of them and the path of the saved GE results.
The suites import Great Expectations, which takes seconds: they are imported when a check runs, so loading
the definitions stays fast.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import LiteralString

import dagster as dg
import pandas as pd

from orchestration.ingestion.assets import RAW_CORPORATE_ACTIONS, RAW_DAILY_PRICES, STOCK_UNIVERSE
from orchestration.partitions import partition_window
from orchestration.resources import MarketDataResource, WarehouseResource
from stockyard.marketdata.chain import FallbackChain
from stockyard.marketdata.settings import MarketDataSettings, get_market_data_settings
from stockyard.quality.results import Finding, QualityResult, Window, markdown_table
from stockyard.quality.settings import QualitySettings, get_quality_settings

# The blocking check of the features model: the training assets refuse features it last failed.
FEATURE_CHECK = "feature_rules"


def build_quality_checks(
    state_dir: Path,
    *,
    features: dg.AssetKey | None = None,
    quality: QualitySettings | None = None,
    market_data: MarketDataSettings | None = None,
) -> list[dg.AssetChecksDefinition]:
    """The checks on the raw assets and the stock universe; on the features model when its key is given;
    and the cross-provider reconciliation when more than one provider is configured. Their results are kept
    under `state_dir`."""
    quality = quality or get_quality_settings()
    market_data = market_data or get_market_data_settings()
    results_dir = quality_results_dir(state_dir)
    checks = [
        _price_bar_checks(quality, results_dir),
        _served_symbols_check(results_dir),
        _action_row_check(quality, results_dir),
        _metadata_check(results_dir),
        _sector_names_check(results_dir),
    ]
    if len(market_data.provider_chain) > 1:
        checks.append(_reconciliation_check(quality, results_dir))
    if features is not None:
        checks.append(build_feature_check(features, state_dir))
    return checks


def quality_results_dir(state_dir: Path) -> Path:
    """Where the GE validation results are kept, one folder per suite."""
    return state_dir / "quality"


def build_feature_check(asset_key: dg.AssetKey, state_dir: Path) -> dg.AssetChecksDefinition:
    """Blocking check of the features model behind `asset_key` (marts.fct_stock_features): finite values in
    range, nulls after warm-up where the feature is defined, one row per symbol and date and none missing.
    Rows undefined by rule (a beta to a market that did not move) are listed in its metadata, not failed:
    see stockyard.quality.features."""
    results_dir = quality_results_dir(state_dir)

    @dg.asset_check(
        asset=asset_key,
        name=FEATURE_CHECK,
        blocking=True,
        description="One row per symbol and date, none missing; each feature present, non-null after its "
        "warm-up wherever its maths is defined, finite and within the range its definition guarantees. Rows "
        "undefined by rule are reported, not failed.",
    )
    def feature_rules(
        context: dg.AssetCheckExecutionContext, warehouse_db: WarehouseResource
    ) -> dg.AssetCheckResult:
        from stockyard.quality.features import check_features

        with warehouse_db.connect() as conn:
            result = check_features(conn, _checked_window(context), results_dir=results_dir)
        return _check_result(result)

    return feature_rules


def build_recommendation_check(
    asset_key: dg.AssetKey,
    state_dir: Path,
    *,
    table: LiteralString,
    score_column: LiteralString = "score",
    rank_column: LiteralString = "rank",
) -> dg.AssetChecksDefinition:
    """Blocking check of the recommendations table behind `asset_key` (columns symbol, date, score, rank)."""
    results_dir = quality_results_dir(state_dir)

    @dg.asset_check(
        asset=asset_key,
        name="recommendation_rules",
        blocking=True,
        description=f"{table}: finite scores, ranks 1..n on each date, one row per symbol and date.",
    )
    def recommendation_rules(
        context: dg.AssetCheckExecutionContext, warehouse_db: WarehouseResource
    ) -> dg.AssetCheckResult:
        from stockyard.quality.recommendations import check_recommendations

        with warehouse_db.connect() as conn:
            result = check_recommendations(
                conn,
                _checked_window(context),
                table=table,
                score_column=score_column,
                rank_column=rank_column,
                results_dir=results_dir,
            )
        return _check_result(result)

    return recommendation_rules


def _price_bar_checks(quality: QualitySettings, results_dir: Path) -> dg.AssetChecksDefinition:
    @dg.multi_asset_check(
        specs=[
            dg.AssetCheckSpec(
                "row_rules",
                asset=RAW_DAILY_PRICES,
                blocking=True,
                description="Loaded bars keep the row rules (prices present and positive, volume >= 0, "
                "high/low around open/close, one bar per symbol and date, NYSE trading days), and the "
                "window's quarantined share stays within STOCKYARD_QUALITY_MAX_QUARANTINED_SHARE "
                f"({quality.max_quarantined_share:.2%}).",
            ),
            dg.AssetCheckSpec(
                "plausibility",
                asset=RAW_DAILY_PRICES,
                blocking=False,
                description="Warnings: gaps (no bar on a trading day a symbol was listed), moves beyond "
                f"STOCKYARD_QUALITY_MAX_DAILY_MOVE ({quality.max_daily_move:.0%}) no corporate action "
                "explains, stale repeated bars, zero volume.",
            ),
        ],
        # One step for both: each reads every bar of the window (seconds for years of them), so they share
        # one read.
        name="raw_daily_prices_bar_checks",
        can_subset=True,
    )
    def raw_daily_prices_bar_checks(
        context: dg.AssetCheckExecutionContext, warehouse_db: WarehouseResource
    ) -> Iterator[dg.AssetCheckResult]:
        from stockyard.quality.raw import check_price_plausibility, check_price_rows, window_bars

        window = _checked_window(context)
        selected = {key.name for key in context.selected_asset_check_keys}
        with warehouse_db.connect() as conn:
            bars = window_bars(conn, window)
            if "row_rules" in selected:
                rows = check_price_rows(conn, window, settings=quality, results_dir=results_dir, bars=bars)
                yield _check_result(rows, RAW_DAILY_PRICES, "row_rules")
            if "plausibility" in selected:
                plausibility = check_price_plausibility(
                    conn, window, settings=quality, results_dir=results_dir, bars=bars
                )
                yield _check_result(plausibility, RAW_DAILY_PRICES, "plausibility")

    return raw_daily_prices_bar_checks


def _served_symbols_check(results_dir: Path) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=RAW_DAILY_PRICES,
        name="served_symbols",
        blocking=True,
        description="Symbols and files the provider could not serve in the window, with the reasons: an "
        "error (blocking) when the window then holds no bar at all, else a warning.",
    )
    def raw_daily_prices_served_symbols(
        context: dg.AssetCheckExecutionContext, warehouse_db: WarehouseResource
    ) -> dg.AssetCheckResult:
        from stockyard.quality.raw import check_served_symbols

        with warehouse_db.connect() as conn:
            result = check_served_symbols(conn, _checked_window(context), results_dir=results_dir)
        return _check_result(result)

    return raw_daily_prices_served_symbols


def _action_row_check(quality: QualitySettings, results_dir: Path) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=RAW_CORPORATE_ACTIONS,
        name="row_rules",
        blocking=True,
        description="Loaded corporate actions keep the row rules (positive split ratio, dividend >= 0, one "
        "row per symbol and ex-date), and the window's quarantined share stays within "
        f"STOCKYARD_QUALITY_MAX_QUARANTINED_SHARE ({quality.max_quarantined_share:.2%}).",
    )
    def raw_corporate_actions_row_rules(
        context: dg.AssetCheckExecutionContext, warehouse_db: WarehouseResource
    ) -> dg.AssetCheckResult:
        from stockyard.quality.raw import check_action_rows

        with warehouse_db.connect() as conn:
            result = check_action_rows(
                conn, _checked_window(context), settings=quality, results_dir=results_dir
            )
        return _check_result(result)

    return raw_corporate_actions_row_rules


def _metadata_check(results_dir: Path) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=STOCK_UNIVERSE,
        name="metadata_rules",
        blocking=True,
        description="Sectors are GICS sectors, market caps are positive where known, and every symbol with "
        "prices has a row in raw.stocks.",
    )
    def stock_universe_metadata_rules(warehouse_db: WarehouseResource) -> dg.AssetCheckResult:
        from stockyard.quality.metadata import check_metadata

        with warehouse_db.connect() as conn:
            result = check_metadata(conn, results_dir=results_dir)
        return _check_result(result)

    return stock_universe_metadata_rules


def _sector_names_check(results_dir: Path) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=STOCK_UNIVERSE,
        name="sector_names",
        blocking=False,
        description="Warnings: stocks whose sector name names no GICS sector, today's or historical, loaded "
        "without one; the metadata counts the historical names mapped to today's.",
    )
    def stock_universe_sector_names(warehouse_db: WarehouseResource) -> dg.AssetCheckResult:
        from stockyard.quality.metadata import check_sector_names

        with warehouse_db.connect() as conn:
            result = check_sector_names(conn, results_dir=results_dir)
        return _check_result(result)

    return stock_universe_sector_names


def _reconciliation_check(quality: QualitySettings, results_dir: Path) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=RAW_DAILY_PRICES,
        name="reconciliation",
        blocking=False,
        description="Warnings: the configured providers' closes for a sample of the loaded symbols and the "
        "window's last trading days differ by more than STOCKYARD_QUALITY_RECONCILIATION_TOLERANCE "
        f"({quality.reconciliation_tolerance:.2%}).",
    )
    def raw_daily_prices_reconciliation(
        context: dg.AssetCheckExecutionContext,
        warehouse_db: WarehouseResource,
        market_data: MarketDataResource,
    ) -> dg.AssetCheckResult:
        from stockyard.quality.reconciliation import reconcile_loaded_window

        provider = market_data.provider()
        members = provider.providers if isinstance(provider, FallbackChain) else [provider]
        with warehouse_db.connect() as conn:
            result = reconcile_loaded_window(
                conn,
                members,
                _checked_window(context),
                tolerance=quality.reconciliation_tolerance,
                results_dir=results_dir,
            )
        return _check_result(result)

    return raw_daily_prices_reconciliation


def _checked_window(context: dg.AssetCheckExecutionContext) -> Window:
    """The run's partition window; for a check run on its own, the latest raw_daily_prices window."""
    if context.has_partition_key or context.has_partition_key_range:
        return partition_window(context)
    event = context.instance.get_latest_materialization_event(RAW_DAILY_PRICES)
    materialization = event.asset_materialization if event else None
    window = materialization.metadata.get("window") if materialization else None
    if window is None:
        raise dg.Failure(description="raw_daily_prices has no materialized window to check yet.")
    first, last = str(window.value).split("..")
    return Window.of(pd.Timestamp(first).date(), pd.Timestamp(last).date())


def _check_result(
    result: QualityResult, asset: dg.AssetKey | None = None, check: str | None = None
) -> dg.AssetCheckResult:
    """A Dagster check result: per-rule counts, a sample of failing rows per rule, the GE results' path.
    `asset` and `check` name it where a step runs more than one check."""
    failing = result.failing_rules
    metadata: dict[str, dg.RawMetadataValue] = {
        "window": str(result.window) if result.window else "all rows",
        "rows_checked": result.rows,
        "failing_rows": sum(failing.values()),
        "failing_rows_by_rule": dg.MetadataValue.json(failing),
        "rules": dg.MetadataValue.md(_rules_table(result)),
        "failing_sample": dg.MetadataValue.md(_failing_sample(result)),
        **result.metrics,
    }
    if result.results_path is not None:
        metadata["ge_validation_result"] = dg.MetadataValue.path(str(result.results_path))
    if result.reported:
        metadata["reported_rows_by_rule"] = dg.MetadataValue.json(result.reported_rules)
        metadata["reported_sample"] = dg.MetadataValue.md(_sample_sections(result.reported))
    quarantine = result.quarantine
    if quarantine is not None:
        metadata |= {
            "loaded_rows": quarantine.loaded,
            "quarantined_rows": quarantine.quarantined,
            "quarantined_share": quarantine.share,
            "max_quarantined_share": quarantine.max_share,
            "quarantined_by_rule": dg.MetadataValue.json(quarantine.by_rule),
            "quarantined_sample": dg.MetadataValue.md(markdown_table(quarantine.sample)),
        }
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=check,
        passed=result.passed,
        severity=dg.AssetCheckSeverity(result.severity.value),
        metadata=metadata,
        description=" ".join(part for part in (_summary(result), result.detail) if part),
    )


def _summary(result: QualityResult) -> str:
    """One line: what failed, or that nothing did."""
    parts = [f"{rule}: {rows} row(s)" for rule, rows in result.failing_rules.items()]
    quarantine = result.quarantine
    if quarantine is not None and not quarantine.within_threshold:
        parts.append(
            f"quarantined {quarantine.share:.2%} of {quarantine.dataset} rows "
            f"(more than {quarantine.max_share:.2%})"
        )
    window = f" in {result.window}" if result.window else ""
    reported = "".join(
        f"; reported, not failing: {rule}: {rows} row(s)" for rule, rows in result.reported_rules.items()
    )
    if not parts:
        if quarantine is None or not quarantine.quarantined:
            return f"{result.rows} rows{window} pass every rule{reported}."
        return (
            f"{result.rows} rows{window} pass every rule; {quarantine.quarantined} quarantined "
            f"({quarantine.share:.2%}, within {quarantine.max_share:.2%}){reported}."
        )
    return f"{result.severity.value}{window}: " + "; ".join(parts) + reported


def _rules_table(result: QualityResult) -> str:
    """Every rule with its failing rows (and, on raw data, quarantined rows), failing or not."""
    quarantined = result.quarantine.by_rule if result.quarantine else {}
    rows = [
        {
            "rule": finding.rule,
            "failing rows": finding.failing,
            **({"quarantined": quarantined.get(finding.rule, 0)} if result.quarantine else {}),
            "meaning": finding.error or finding.description,
        }
        for finding in result.findings
    ]
    # Rules only the loader applies (unparseable dates, text in numbers, unserved symbols).
    known = {finding.rule for finding in result.findings}
    rows += [
        {"rule": rule, "failing rows": 0, "quarantined": count, "meaning": "set aside on the way in"}
        for rule, count in quarantined.items()
        if rule not in known
    ]
    return markdown_table(pd.DataFrame(rows))


def _failing_sample(result: QualityResult) -> str:
    return _sample_sections(result.findings) or "_no failing rows_"


def _sample_sections(findings: list[Finding]) -> str:
    """Per finding with rows, its rule, count and meaning over a sample of the rows."""
    sections = [
        f"**{finding.rule}** ({finding.failing} row(s)): {finding.error or finding.description}\n\n"
        + markdown_table(finding.sample)
        for finding in findings
        if finding.failing
    ]
    return "\n\n".join(sections)
