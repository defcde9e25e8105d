"""Ingestion: the stock universe, daily bars and corporate actions, loaded into the `raw` schema.

The assets are thin: providers, validation and loading are plain functions in `stockyard`, tested directly.
"""

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import dagster as dg

from orchestration.partitions import window_dates
from orchestration.resources import MarketDataResource, WarehouseResource
from stockyard import universe, warehouse
from stockyard.marketdata.sectors import map_sectors

INGESTION_GROUP = "ingestion"
STOCK_UNIVERSE = dg.AssetKey("stock_universe")
RAW_DAILY_PRICES = dg.AssetKey("raw_daily_prices")
RAW_CORPORATE_ACTIONS = dg.AssetKey("raw_corporate_actions")
# The dbt source's freshness (dbt_project/models/staging/__sources.yml), shown on the asset in the UI.
RAW_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(days=7), warn_window=timedelta(days=4))


@dg.asset(
    key=STOCK_UNIVERSE,
    group_name=INGESTION_GROUP,
    kinds={"python", "postgres"},
    description="Stock metadata (name, GICS sector, industry, market cap, currency, exchange) in raw.stocks. "
    "Sector names are mapped to today's GICS sectors (stockyard.marketdata.sectors); one that names none is "
    "loaded as null, with the name as given in sector_as_given.",
)
def stock_universe(
    context: dg.AssetExecutionContext, market_data: MarketDataResource, warehouse_db: WarehouseResource
) -> dg.MaterializeResult[None]:
    provider = market_data.provider()
    with warehouse_db.connect() as conn:
        mapping = map_sectors(universe.tracked_metadata(conn, provider))
        metadata = mapping.metadata
        rows = warehouse.load_stocks(conn, metadata, provider=provider.name, synthetic=provider.synthetic)
    context.log.info("Loaded %d stocks from %s", rows, provider.name)
    if mapping.mapped:
        context.log.info("Sector names mapped to today's GICS sectors: %s", _counts(mapping.mapped))
    if mapping.unrecognised:
        context.log.warning(
            "Loaded without a sector, as these sector names name no GICS sector: %s",
            _counts(mapping.unrecognised),
        )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "sectors": dg.MetadataValue.json(
                {str(sector): int(n) for sector, n in metadata["sector"].value_counts(dropna=False).items()}
            ),
            "sectors_mapped": dg.MetadataValue.json(dict(mapping.mapped)),
            "sectors_unrecognised": dg.MetadataValue.json(dict(mapping.unrecognised)),
            "provider": provider.name,
            "synthetic": provider.synthetic,
            "table": "raw.stocks",
        }
    )


def _counts(counter: Counter[str]) -> str:
    return "; ".join(f"{name} ({count} rows)" for name, count in sorted(counter.items()))


def _examples(names: list[str], shown: int = 3) -> str:
    more = f", ... {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def build_price_assets(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.multi_asset(
        specs=[
            dg.AssetSpec(
                RAW_DAILY_PRICES,
                deps=[STOCK_UNIVERSE],
                description="Daily bars as traded (unadjusted OHLCV) per symbol and NYSE trading day, "
                "in raw.daily_prices.",
                kinds={"python", "postgres"},
                freshness_policy=RAW_FRESHNESS,
            ),
            dg.AssetSpec(
                RAW_CORPORATE_ACTIONS,
                deps=[STOCK_UNIVERSE],
                description="Splits and cash dividends by ex-date, in raw.corporate_actions.",
                kinds={"python", "postgres"},
            ),
        ],
        group_name=INGESTION_GROUP,
        partitions_def=partitions_def,
        # A backfill of years of trading days is one run fetching one window, not thousands of runs.
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def raw_market_data(
        context: dg.AssetExecutionContext, market_data: MarketDataResource, warehouse_db: WarehouseResource
    ) -> Iterator[dg.MaterializeResult[None]]:
        start, end, partition_key = window_dates(context)
        provider = market_data.provider()
        with warehouse_db.connect() as conn:
            symbols = universe.tracked_symbols(conn, warehouse.universe_symbols(conn))
            if not symbols:
                raise dg.Failure("raw.stocks is empty: materialize stock_universe first.")
            summary = warehouse.ingest(
                conn, provider, symbols, start=start, end=end, partition_key=partition_key
            )
        for reason, failed in summary.failed_by_reason.items():
            context.log.warning("Not served, %d symbol(s) (%s): %s", len(failed), _examples(failed), reason)
        for column, sources in sorted(summary.ignored_columns.items()):
            context.log.warning(
                "Column %r is in no known layout and was not read, in %d file(s): %s",
                column,
                len(sources),
                _examples(sorted(sources)),
            )
        common: dict[str, dg.RawMetadataValue] = {
            "provider": provider.name,
            "synthetic": provider.synthetic,
            "window": f"{start}..{end}",
            "quarantined_rows": summary.quarantined,
            "failed_symbols": dg.MetadataValue.json(summary.failed_symbols),
            "unserved_symbols": len(summary.failed_symbols),
            "unserved_files": len(summary.failed_sources),
            "unserved_by_reason": dg.MetadataValue.json(
                {reason: len(failed) for reason, failed in summary.failed_by_reason.items()}
            ),
        }
        yield dg.MaterializeResult(
            asset_key=RAW_DAILY_PRICES,
            metadata={
                **common,
                "dagster/row_count": summary.bars,
                "symbols": len(summary.symbols),
                "first_date": str(summary.first_date),
                "last_date": str(summary.last_date),
                "served_by": dg.MetadataValue.json(dict(summary.served_by)),
                # Column -> files having it.
                "ignored_columns": dg.MetadataValue.json(
                    {column: len(sources) for column, sources in sorted(summary.ignored_columns.items())}
                ),
                "table": "raw.daily_prices",
            },
        )
        yield dg.MaterializeResult(
            asset_key=RAW_CORPORATE_ACTIONS,
            metadata={
                **common,
                "dagster/row_count": summary.actions,
                "splits": summary.splits,
                "dividends": summary.dividends,
                "table": "raw.corporate_actions",
            },
        )

    return raw_market_data
