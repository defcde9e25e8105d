"""Ingestion assets materialized for real: Dagster, the sample provider and PostgreSQL."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from orchestration.definitions import build_definitions
from orchestration.ingestion.assets import build_price_assets, stock_universe
from orchestration.partitions import trading_day_partitions
from orchestration.quality.checks import build_quality_checks
from orchestration.resources import MarketDataResource, WarehouseResource

HISTORY_START = date(2024, 1, 2)
PARTITIONS = trading_day_partitions(HISTORY_START)
PRICE_ASSETS = build_price_assets(PARTITIONS)


def resources(database_url: str) -> dict[str, object]:
    return {
        "market_data": MarketDataResource(
            overrides={"providers": "sample", "start": HISTORY_START.isoformat(), "sample_symbols": "15"}
        ),
        "warehouse_db": WarehouseResource(database_url=database_url),
    }


def materialize_prices(database_url: str, first: str, last: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [stock_universe, PRICE_ASSETS],
        selection=[PRICE_ASSETS],
        resources=resources(database_url),
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
    )


def test_definitions_load() -> None:
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    assert {"stock_universe", "raw_daily_prices", "raw_corporate_actions"} <= {
        key.to_user_string() for key in graph.get_all_asset_keys()
    }


def test_partitions_are_nyse_trading_days() -> None:
    keys = PARTITIONS.get_partition_keys()
    assert keys[0] == "2024-01-02"
    assert "2024-07-04" not in keys and "2024-03-29" not in keys  # Independence Day, Good Friday
    assert "2024-01-06" not in keys  # a Saturday
    assert "2024-07-05" in keys


@pytest.fixture(scope="module")
def loaded_database(database_url: str) -> str:
    assert dg.materialize([stock_universe], resources=resources(database_url)).success
    return database_url


def test_stock_universe_is_labelled_synthetic(loaded_database: str) -> None:
    with psycopg.connect(loaded_database) as conn:
        count, synthetic, sectors = conn.execute(
            "select count(*), bool_and(is_synthetic), count(distinct sector) from raw.stocks"
        ).fetchone()  # type: ignore[misc]
    assert count == 15 and synthetic and sectors == 11


def test_price_window_materializes_in_one_run_and_reruns_idempotently(loaded_database: str) -> None:
    result = materialize_prices(loaded_database, "2024-01-02", "2024-03-28")
    assert result.success
    materializations = result.asset_materializations_for_node("raw_market_data")
    prices = next(m for m in materializations if m.asset_key == dg.AssetKey("raw_daily_prices"))
    assert prices.metadata["synthetic"].value is True
    assert prices.metadata["provider"].value == "sample"
    assert prices.metadata["first_date"].value == "2024-01-02"
    assert prices.metadata["last_date"].value == "2024-03-28"

    with psycopg.connect(loaded_database) as conn:
        before = conn.execute(
            "select count(*), round(sum(close)::numeric, 6) from raw.daily_prices"
        ).fetchone()
        assert materialize_prices(loaded_database, "2024-02-01", "2024-02-01").success
        assert (
            conn.execute("select count(*), round(sum(close)::numeric, 6) from raw.daily_prices").fetchone()
            == before
        )
        duplicates = conn.execute(
            "select count(*) from (select from raw.daily_prices group by symbol, date having count(*) > 1) d"
        ).fetchone()
    assert duplicates == (0,)
    provider = MarketDataResource(
        overrides={"providers": "sample", "start": HISTORY_START.isoformat(), "sample_symbols": "15"}
    ).provider()
    returned = provider.history(provider.symbols(), date(2024, 1, 2), date(2024, 3, 28))
    assert before is not None and before[0] == len(returned.bars) > 0


# A folder as a data engineer brings it: Stooq files with an id column, one file of no known layout, and a
# constituents list from before 2018 with one sector name that is no GICS sector at all.
STOOQ_HEADER = "Date,Open,High,Low,Close,Volume,stock_id"
CONSTITUENTS = (
    "Symbol,Name,Sector\n"
    "XOM,Exxon Mobil,Energy\n"
    "T,AT&T,Telecommunication Services\n"
    "VZ,Verizon,Telecommunication Services\n"
    "IBM,IBM,Technology\n"
    "ODD,Odd Corp,Health care\n"
)


def stooq_folder(folder: Path) -> Path:
    """Bars on the first four trading days of 2024 (Tuesday to Friday) for XOM, T, VZ and IBM."""
    days = ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]
    for number, symbol in enumerate(["xom", "t", "vz", "ibm"]):
        rows = [f"{day},10,11,9,10.5,{1000 + n},{number}" for n, day in enumerate(days)]
        (folder / f"{symbol}.us.txt").write_text("\n".join([STOOQ_HEADER, *rows]) + "\n")
    (folder / "odd.us.txt").write_text("day,price\n2024-01-02,1\n")
    metadata = folder / "constituents.csv"
    metadata.write_text(CONSTITUENTS)
    return metadata


@dg.asset(
    deps=[dg.AssetKey("raw_daily_prices")],
    partitions_def=PARTITIONS,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def price_consumer() -> None:
    """Downstream of raw prices."""


def materialize_folder(
    database_url: str, folder: Path, selection: list[dg.AssetsDefinition], first: str, last: str
) -> dg.ExecuteInProcessResult:
    market_data = MarketDataResource(
        overrides={
            "providers": "csv",
            "start": HISTORY_START.isoformat(),
            "csv_dir": str(folder),
            "metadata_csv": str(folder / "constituents.csv"),
        }
    )
    tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
    return dg.materialize(
        [
            stock_universe,
            PRICE_ASSETS,
            price_consumer,
            *build_quality_checks(folder / "state", market_data=market_data.settings()),
        ],
        selection=selection,
        resources={"market_data": market_data, "warehouse_db": WarehouseResource(database_url=database_url)},
        tags=tags if PRICE_ASSETS in selection else {},
        raise_on_error=False,
    )


def checked(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {evaluation.check_name: evaluation for evaluation in result.get_asset_check_evaluations()}


def metadata_of(result: dg.ExecuteInProcessResult, key: str) -> dict[str, object]:
    # Each partition of a range run carries the same metadata.
    events = [m for m in result.get_asset_materialization_events() if m.asset_key == dg.AssetKey(key)]
    metadata = events[-1].step_materialization_data.materialization.metadata
    return {name: value.value for name, value in metadata.items()}


def test_a_stooq_folder_with_historical_sectors_loads_every_symbol_it_can(
    empty_database_url: str, tmp_path: Path
) -> None:
    stooq_folder(tmp_path)

    universe = materialize_folder(empty_database_url, tmp_path, [stock_universe], "", "")

    assert universe.success
    checks = checked(universe)
    assert checks["metadata_rules"].passed
    sector_names = checks["sector_names"]
    assert not sector_names.passed and sector_names.severity is dg.AssetCheckSeverity.WARN
    assert "| IBM | IBM | Technology |" in str(sector_names.metadata["failing_sample"].value)
    assert metadata_of(universe, "stock_universe")["sectors_mapped"] == {
        "Health care -> Health Care": 1,
        "Telecommunication Services -> Communication Services": 2,
    }
    assert metadata_of(universe, "stock_universe")["sectors_unrecognised"] == {"Technology": 1}
    with psycopg.connect(empty_database_url) as conn:
        stocks = conn.execute(
            "select symbol, sector, sector_as_given from raw.stocks order by symbol"
        ).fetchall()
    assert stocks == [
        ("IBM", None, "Technology"),
        ("ODD", "Health Care", "Health care"),
        ("T", "Communication Services", "Telecommunication Services"),
        ("VZ", "Communication Services", "Telecommunication Services"),
        ("XOM", "Energy", "Energy"),
    ]

    # A window ending on a Friday: what was not served is still found under the window's key.
    prices = materialize_folder(
        empty_database_url, tmp_path, [PRICE_ASSETS, price_consumer], "2024-01-02", "2024-01-05"
    )

    assert prices.success and prices.asset_materializations_for_node("price_consumer")
    loaded = metadata_of(prices, "raw_daily_prices")
    assert loaded["dagster/row_count"] == 16 and loaded["symbols"] == 4
    assert loaded["ignored_columns"] == {"stock_id": 4}
    assert (loaded["unserved_symbols"], loaded["unserved_files"]) == (1, 1)
    assert loaded["unserved_by_reason"] == {"unknown CSV layout, header: 'day,price'": 1}
    served = checked(prices)["served_symbols"]
    assert not served.passed and served.severity is dg.AssetCheckSeverity.WARN
    assert served.metadata["unserved_symbols"].value == 1 and served.metadata["bars_in_window"].value == 16
    assert "not served: unknown CSV layout, header: 'day,price' (1 symbol(s))" in str(served.description)
    assert checked(prices)["row_rules"].passed


def test_a_window_in_which_nothing_was_served_fails_and_blocks_what_is_downstream(
    empty_database_url: str, tmp_path: Path
) -> None:
    stooq_folder(tmp_path)
    assert materialize_folder(empty_database_url, tmp_path, [stock_universe], "", "").success

    # The files' bars start in 2024: a window before them loads nothing, and one file cannot be read.
    result = materialize_folder(
        empty_database_url, tmp_path, [PRICE_ASSETS, price_consumer], "2024-01-02", "2024-01-02"
    )
    assert result.success  # a day with bars, as a control

    with psycopg.connect(empty_database_url) as conn:
        conn.execute("delete from raw.daily_prices")
    for path in tmp_path.glob("*.us.txt"):
        path.write_text(path.read_text().replace(STOOQ_HEADER, "when,what"))
    result = materialize_folder(
        empty_database_url, tmp_path, [PRICE_ASSETS, price_consumer], "2024-01-03", "2024-01-05"
    )

    assert not result.success and not result.asset_materializations_for_node("price_consumer")
    served = checked(result)["served_symbols"]
    assert not served.passed and served.severity is dg.AssetCheckSeverity.ERROR
    assert served.metadata["unserved_files"].value == 5 and served.metadata["bars_in_window"].value == 0
    assert "0 bars in the window; not served: unknown CSV layout" in str(served.description)


def test_the_next_ingestion_follows_the_admins_added_and_retired_symbols(
    empty_database_url: str, tmp_path: Path
) -> None:
    stooq_folder(tmp_path)
    everything = [stock_universe, PRICE_ASSETS]
    assert materialize_folder(empty_database_url, tmp_path, everything, "2024-01-02", "2024-01-03").success
    with psycopg.connect(empty_database_url) as conn:
        conn.execute(
            "insert into app.symbol_overrides (symbol, tracked) values ('VZ', false), ('NEWCO', true)"
        )

    result = materialize_folder(empty_database_url, tmp_path, everything, "2024-01-04", "2024-01-05")

    assert result.success
    # NEWCO was asked for (the folder has no file of it; ODD's file has no known layout); VZ was not.
    assert metadata_of(result, "raw_daily_prices")["failed_symbols"] == ["NEWCO", "ODD"]
    assert checked(result)["metadata_rules"].passed
    with psycopg.connect(empty_database_url) as conn:
        listed = [symbol for (symbol,) in conn.execute("select symbol from raw.stocks order by symbol")]
        vz_days = conn.execute(
            "select min(date)::text, max(date)::text from raw.daily_prices where symbol = 'VZ'"
        ).fetchone()
        xom_days = conn.execute("select count(*) from raw.daily_prices where symbol = 'XOM'").fetchone()
    assert listed == ["IBM", "NEWCO", "ODD", "T", "VZ", "XOM"]
    assert vz_days == ("2024-01-02", "2024-01-03")  # its history kept, nothing fetched after retirement
    assert xom_days == (4,)
