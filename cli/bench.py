"""`stockyard bench models`: the models benchmark on a folder of CSVs (see ml.benchmark for the protocol).

The CSVs (any layout the `csv` provider reads, with an optional metadata CSV) are loaded into a throwaway
warehouse on the configured PostgreSQL server, dbt builds the marts the models read, every family is fitted
and scored per test year, and with `--with-qlib` Qlib's Alpha158 models run on the same windows in a virtual
environment of their own (ml.qlib_side). The table is printed, written as Markdown and logged to MLflow.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import psycopg
import typer
from psycopg import sql

from ml.config import FEATURE_SETS
from stockyard.endpoints import dbt_pointed_at, resolve_endpoints
from stockyard.settings import PROJECT_ROOT, get_services_settings

if TYPE_CHECKING:
    from ml.benchmark import BenchmarkConfig
    from ml.config import DatasetConfig, TrackingConfig
    from stockyard.marketdata.csv_files import CsvProvider

bench_app = typer.Typer(help="Benchmarks that print figures.", no_args_is_help=True)

# A warehouse built for this feature set serves every other.
EVERY_FEATURE = "all"
# What every feature set needs besides its own marts: prices, and the forward returns (targets, backtest).
COMMON_MODELS = ["+fct_daily_prices", "+fct_forward_returns"]
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2100, 12, 31)
WAREHOUSE = "stockyard_bench_models"


@bench_app.command("models")
def models(
    data: Annotated[
        Path, typer.Option(help="Folder of daily bars as CSV files (any layout the csv provider reads).")
    ],
    metadata: Annotated[
        Path | None, typer.Option(help="CSV of symbol, name and sector (GICS) for the symbols.")
    ] = None,
    years: Annotated[str, typer.Option(help="Test years: 2008-2021 or 2019,2020.")] = "2008-2021",
    families: Annotated[str, typer.Option(help="Model families, comma-separated.")] = "xgboost,lstm,prophet",
    seeds: Annotated[str, typer.Option(help="Seeds of the stochastic families.")] = "7,11,13",
    symbols: Annotated[
        int | None, typer.Option(help="Only the first N symbols (alphabetically) of the folder.")
    ] = None,
    features: Annotated[
        str | None,
        typer.Option(help=f"Feature set: {', '.join(FEATURE_SETS)} (default: the champion's)."),
    ] = None,
    horizon: Annotated[int, typer.Option(help="Days of the forward excess return scored (1, 5, 21).")] = 5,
    label: Annotated[
        str | None, typer.Option(help="Training label: zscore or rank per date (default: the champion's).")
    ] = None,
    label_horizon: Annotated[
        int | None, typer.Option(help="Days of the forward excess return trained on; default --horizon.")
    ] = None,
    train_days: Annotated[
        int | None,
        typer.Option(help="Train on the latest N trading days (default: the champion's); 0: all history."),
    ] = None,
    validation_days: Annotated[int, typer.Option(help="Early-stopping block before each test year.")] = 126,
    min_train_days: Annotated[int, typer.Option(help="Fewest training dates of a fold.")] = 252,
    xgboost_rounds: Annotated[
        int | None, typer.Option(help="Most boosting rounds (default: the champion's).")
    ] = None,
    lstm_epochs: Annotated[int, typer.Option()] = 4,
    lstm_samples: Annotated[int, typer.Option(help="Training rows drawn per LSTM epoch.")] = 100_000,
    threads: Annotated[int | None, typer.Option(help="Cores for XGBoost, Prophet and Qlib.")] = None,
    with_qlib: Annotated[
        bool, typer.Option("--with-qlib", help="Add Qlib 0.9.7's Alpha158 LightGBM and XGBoost rows.")
    ] = False,
    server_url: Annotated[
        str | None,
        typer.Option(help="PostgreSQL server of the throwaway warehouse (default: the configured one)."),
    ] = None,
    warehouse: Annotated[str, typer.Option(help="Name of the throwaway warehouse database.")] = WAREHOUSE,
    keep_warehouse: Annotated[
        bool,
        typer.Option(
            "--keep-warehouse", help="Keep the warehouse; a later run on the same data reuses it unbuilt."
        ),
    ] = False,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow store (default: the configured one).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Markdown leaderboard (default under the state dir).")
    ] = None,
) -> None:
    """Evaluate every model family on the CSVs with one walk-forward protocol and print the leaderboard.
    Unset options take the champion's configuration (ml.config.MLSettings, STOCKYARD_ML_*)."""
    from ml.benchmark import DEFAULT_CONFIGS, BenchmarkConfig
    from ml.config import (
        DatasetConfig,
        LSTMConfig,
        ProphetConfig,
        TrackingConfig,
        get_ml_settings,
    )

    champion = get_ml_settings()
    features = features or champion.feature_set
    label = label or champion.label
    train_days = (champion.max_train_days if train_days is None else train_days) or None

    if features not in FEATURE_SETS:
        raise typer.BadParameter(
            f"{features!r}: choose one of {', '.join(FEATURE_SETS)}", param_hint="--features"
        )
    if label not in ("zscore", "rank"):
        raise typer.BadParameter(f"{label!r}: choose zscore or rank", param_hint="--label")
    if not data.is_dir():
        raise typer.BadParameter(f"{data} is not a folder", param_hint="--data")
    test_years = parse_years(years)
    services = get_services_settings()
    configs = dict(DEFAULT_CONFIGS) | {
        "xgboost": replace(
            champion.xgboost(), n_estimators=xgboost_rounds or champion.xgboost_rounds, n_jobs=threads
        ),
        "lstm": LSTMConfig(epochs=lstm_epochs, samples_per_epoch=lstm_samples, n_threads=1),
        "prophet": ProphetConfig(n_jobs=threads),
    }
    try:
        config = BenchmarkConfig(
            test_years=test_years,
            families=tuple(_names(families)),
            seeds=tuple(int(seed) for seed in _names(seeds)),
            validation_days=validation_days,
            min_train_days=min_train_days,
            max_train_days=train_days,
            label_horizon=label_horizon,
            configs=configs,
        )
        dataset_config = DatasetConfig(
            horizon=horizon,
            feature_set=features,
            label=label,  # type: ignore[arg-type]  # checked above
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    server = server_url or resolve_endpoints(services).database_url
    if tracking_uri:
        tracking = TrackingConfig.for_database(
            tracking_uri, artifact_root=services.state_dir / "mlflow-artifacts"
        )
    else:
        tracking = TrackingConfig.from_settings(services)
    run_models_benchmark(
        data=data,
        metadata=metadata,
        config=config,
        dataset_config=dataset_config,
        symbol_limit=symbols,
        feature_set=features,
        with_qlib=with_qlib,
        threads=threads,
        server_url=server,
        warehouse=warehouse,
        keep_warehouse=keep_warehouse,
        tracking=tracking,
        output=output or services.state_dir / "bench" / "models-leaderboard.md",
        state_dir=services.state_dir,
    )


def run_models_benchmark(
    *,
    data: Path,
    metadata: Path | None,
    config: BenchmarkConfig,
    dataset_config: DatasetConfig,
    symbol_limit: int | None,
    feature_set: str,
    with_qlib: bool,
    threads: int | None,
    server_url: str,
    warehouse: str,
    keep_warehouse: bool,
    tracking: TrackingConfig,
    output: Path,
    state_dir: Path,
) -> None:
    from ml import benchmark, qlib_side
    from ml.datasets import load_dataset
    from stockyard.marketdata.csv_files import CsvProvider

    os.environ.update({"MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"})
    provider = CsvProvider(data, metadata)
    chosen = provider.symbols()[:symbol_limit] if symbol_limit else provider.symbols()
    if not chosen:
        raise typer.BadParameter(f"{data} holds no CSV file of daily bars", param_hint="--data")
    fingerprint = data_fingerprint(data, chosen, metadata)
    feature_models = [f"+{table.split('.')[-1]}" for table in FEATURE_SETS[feature_set]]
    url = server_url.rsplit("/", 1)[0] + f"/{warehouse}"
    typer.echo(f"data {data}: {len(chosen)} symbols, fingerprint {fingerprint}")
    built = _warehouse_fingerprint(server_url, warehouse) in {
        f"{fingerprint} {feature_set}",
        f"{fingerprint} {EVERY_FEATURE}",
    }
    if built:
        typer.echo(f"reusing warehouse {warehouse} (built from the same data)")
    else:
        _build_warehouse(
            server_url, warehouse, url, provider, chosen, [*feature_models, *COMMON_MODELS], state_dir
        )
        _set_warehouse_fingerprint(server_url, warehouse, f"{fingerprint} {feature_set}")
    try:
        with psycopg.connect(url) as conn:
            dataset = load_dataset(conn, config=dataset_config)
            if config.label_horizon is not None and config.label_horizon != dataset.horizon:
                dataset = benchmark.with_label_target(
                    dataset, benchmark.load_label_target(conn, dataset, config.label_horizon)
                )
            dates = dataset.labelled_dates
            next_returns = benchmark.load_next_returns(conn, dates.min(), dates.max())
        typer.echo(
            f"dataset: {len(dataset.frame):,} rows, {dataset.frame['symbol'].nunique()} symbols, "
            f"{len(dataset.features)} features ({feature_set}), {dates.min().date()}..{dates.max().date()}"
        )
        external = {}
        if with_qlib:
            folds = benchmark.folds_for(dataset, config)
            external = qlib_side.qlib_predictions(
                url, folds, state_dir=state_dir / "qlib", threads=threads, progress=typer.echo
            )
        rows = benchmark.run_benchmark(dataset, next_returns, config, external=external, progress=typer.echo)
    finally:
        if not keep_warehouse:
            _drop_database(server_url, warehouse)
    table = benchmark.markdown_table(rows)
    run_ids = benchmark.log_to_mlflow(
        rows,
        tracking,
        data_fingerprint=fingerprint,
        dataset=dataset,
        config=config,
        feature_set=feature_set,
        table=table,
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(
        f"Test years {', '.join(map(str, config.test_years))}; data fingerprint {fingerprint}; horizon "
        f"{dataset.horizon} days; features {feature_set}.\n\n{table}\n"
    )
    typer.echo(table)
    typer.echo(f"leaderboard: {output}; MLflow experiment {benchmark.EXPERIMENT}: {len(run_ids)} runs")


def parse_years(text: str) -> tuple[int, ...]:
    """`2008-2021` or `2019,2020` (or both mixed) as sorted years."""
    years: set[int] = set()
    try:
        for part in _names(text):
            first, _, last = part.partition("-")
            years.update(range(int(first), int(last or first) + 1))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not years like 2008-2021 or 2019,2020", param_hint="--years"
        ) from None
    if not years:
        raise typer.BadParameter("name at least one test year", param_hint="--years")
    return tuple(sorted(years))


def data_fingerprint(folder: Path, symbols: Sequence[str], metadata: Path | None) -> str:
    """A hash of the folder's files (names and bytes), the symbols chosen from them and the metadata file:
    the same data, the same print."""
    digest = hashlib.sha256(",".join(symbols).encode())
    for path in [*sorted(p for p in folder.iterdir() if p.is_file()), *([metadata] if metadata else [])]:
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _admin(server_url: str) -> psycopg.Connection:
    return psycopg.connect(server_url, autocommit=True)


def _warehouse_fingerprint(server_url: str, name: str) -> str | None:
    with _admin(server_url) as conn:
        row = conn.execute(
            "select shobj_description(oid, 'pg_database') from pg_database where datname = %s", (name,)
        ).fetchone()
    return row[0] if row else None


def _set_warehouse_fingerprint(server_url: str, name: str, fingerprint: str) -> None:
    with _admin(server_url) as conn:
        conn.execute(
            sql.SQL("comment on database {} is {}").format(sql.Identifier(name), sql.Literal(fingerprint))
        )


def _drop_database(server_url: str, name: str) -> None:
    with _admin(server_url) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def _build_warehouse(
    server_url: str,
    name: str,
    url: str,
    provider: CsvProvider,
    symbols: Sequence[str],
    models: Sequence[str],
    state_dir: Path,
) -> None:
    """A fresh database `name` with the application's tables, the CSVs loaded and the marts built."""
    from cli import dbt_cli
    from stockyard import warehouse
    from stockyard.db.migrate import upgrade

    _drop_database(server_url, name)
    with _admin(server_url) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    upgrade(url)
    with psycopg.connect(url) as conn:
        warehouse.load_stocks(conn, provider.metadata(symbols), provider=provider.name, synthetic=False)
        summary = warehouse.ingest(
            conn, provider, symbols, start=FIRST_DAY, end=LAST_DAY, partition_key="bench"
        )
    typer.echo(
        f"loaded {summary.bars:,} bars of {len(summary.symbols)} symbols; quarantined rows: "
        f"{summary.quarantined}; failed: {', '.join(summary.failed_symbols) or 'none'}"
    )
    project = PROJECT_ROOT / "dbt_project"
    target = state_dir / "bench" / "dbt-target"
    with dbt_pointed_at(url):
        result = dbt_cli.invoke(
            [
                "run",
                "--select",
                *models,
                "--project-dir",
                str(project),
                "--profiles-dir",
                str(project),
                "--target-path",
                str(target),
                "--log-path",
                str(target / "logs"),
                "--quiet",
            ]
        )
    if not result.success:
        raise typer.BadParameter(f"dbt could not build the marts: {result.exception or result.result}")
