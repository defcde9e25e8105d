"""The champion and challenger of each registered model, with their latest backtest, in one statement."""

from __future__ import annotations

from sqlalchemy import Select, and_, select, true
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from serving.schemas import BacktestSummary, ModelVersion, RegisteredModel
from serving.tables import backtests, model_versions

BACKTEST_COLUMNS = tuple(backtests.c[name] for name in BacktestSummary.model_fields if name in backtests.c)


def backtest_from(row: RowMapping, prefix: str = "") -> BacktestSummary | None:
    if row[f"{prefix}backtest_id"] is None:
        return None
    return BacktestSummary.model_validate(
        {column.name: row[prefix + column.name] for column in BACKTEST_COLUMNS}
    )


def latest_backtest(model_name: object, version: object) -> Select[tuple[object, ...]]:
    """The newest backtest of a model version (the (model_name, model_version, created_at) index)."""
    return (
        select(*BACKTEST_COLUMNS)
        .where(and_(backtests.c.model_name == model_name, backtests.c.model_version == version))
        .order_by(backtests.c.created_at.desc())
        .limit(1)
    )


def aliased_versions_statement() -> Select[tuple[object, ...]]:
    latest = latest_backtest(model_versions.c.model_name, model_versions.c.version).lateral("latest_backtest")
    return (
        select(
            model_versions,
            *(column.label(f"bt_{column.name}") for column in latest.c),
        )
        .select_from(model_versions.outerjoin(latest, true()))
        .where(model_versions.c.alias.is_not(None))
        .order_by(model_versions.c.model_name, model_versions.c.alias)
    )


async def registered_models(conn: AsyncConnection) -> list[RegisteredModel]:
    by_name: dict[str, dict[str, ModelVersion]] = {}
    for row in (await conn.execute(aliased_versions_statement())).mappings():
        version = ModelVersion(
            model_name=row["model_name"],
            family=row["family"],
            version=row["version"],
            alias=row["alias"],
            run_id=row["run_id"],
            run_url=row["run_url"],
            evaluation_start=row["evaluation_start"],
            evaluation_end=row["evaluation_end"],
            metrics=row["metrics"],
            promotion_reason=row["promotion_reason"],
            registered_at=row["registered_at"],
            data_source=row["data_source"],
            latest_backtest=backtest_from(row, prefix="bt_"),
        )
        by_name.setdefault(version.model_name, {})[version.alias] = version
    return [
        RegisteredModel(
            model_name=name, champion=aliases.get("champion"), challenger=aliases.get("challenger")
        )
        for name, aliases in by_name.items()
    ]
