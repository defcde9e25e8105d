"""What the warehouse holds right now: the data date, the model versions and the symbols.

Each worker reads it in the background every few seconds, never on a request: requests check symbols and
build cache keys from it without a round trip. A new materialization shows up within one refresh.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import Any

from psycopg.errors import UndefinedTable
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from serving.database import within

# stockyard.products.SYNTHETIC, not imported from there: that module brings pandas and the analytics along.
SYNTHETIC = "synthetic"
logger = logging.getLogger("serving.state")

_MARTS_STATE = text(
    """
    select
        (select max(last_date) from marts.dim_stocks) as as_of,
        coalesce(
            (select jsonb_object_agg(symbol, case when is_synthetic then :synthetic else provider end)
             from marts.dim_stocks),
            '{}'::jsonb
        ) as symbol_sources,
        to_regclass('products.recommendations') is not null as has_products
    """
)

# The latest recommendations (the (date, rank) index finds them) and the aliases of every registered model.
_PRODUCTS_STATE = text(
    """
    select
        latest.date as recommendations_date,
        latest.model_name as recommendations_model,
        latest.model_version as recommendations_version,
        coalesce(
            (select jsonb_object_agg(model_name, version) from products.model_versions
             where alias = 'champion'),
            '{}'::jsonb
        ) as champions,
        (select max(registered_at) from products.model_versions) as models_registered_at
    from (select 1) as one
    left join lateral (
        select date, model_name, model_version from products.recommendations
        where date = (select max(date) from products.recommendations)
        order by rank
        limit 1
    ) as latest on true
    """
)


@dataclass(frozen=True)
class DataState:
    as_of: date | None
    # symbol -> 'synthetic' or the provider that served it
    symbol_sources: dict[str, str]
    recommendations_date: date | None = None
    recommendations_model: str | None = None
    recommendations_version: str | None = None
    champions: dict[str, str] = field(default_factory=dict)
    models_registered_at: datetime | None = None
    generation: int = 0
    # namespace -> its purge generation, for those purged alone (stockyard.api_cache.CacheNamespace)
    namespace_generations: dict[str, int] = field(default_factory=dict)

    @cached_property
    def data_source(self) -> str:
        return ",".join(sorted(set(self.symbol_sources.values()))) or "unknown"

    @cached_property
    def cache_namespace(self) -> str:
        """Part of every cache key: changes with the data date, any model version, and each purge."""
        models = ",".join(f"{name}={version}" for name, version in sorted(self.champions.items()))
        fingerprint = hashlib.blake2b(
            f"{models}|{self.models_registered_at}|{self.recommendations_version}".encode(), digest_size=6
        ).hexdigest()
        return f"g{self.generation}:{self.as_of}:{self.recommendations_date}:{fingerprint}"

    @cached_property
    def alias_namespace(self) -> str:
        """Of the memory tier's URL aliases, which skip routing and so cannot tell which namespace their
        answer is in: it changes with cache_namespace and with the purge of any namespace."""
        purged = ",".join(f"{name}={count}" for name, count in sorted(self.namespace_generations.items()))
        return f"{self.cache_namespace}|{purged}"

    def source_of(self, symbol: str) -> str:
        return self.symbol_sources.get(symbol, "unknown")


async def load_state(
    engine: AsyncEngine, *, generation: int, namespace_generations: dict[str, int]
) -> DataState:
    async with engine.connect() as conn:
        marts = (await conn.execute(_MARTS_STATE, {"synthetic": SYNTHETIC})).mappings().one()
        products: Mapping[str, Any] = {}
        if marts["has_products"]:
            try:
                async with conn.begin_nested():
                    products = dict((await conn.execute(_PRODUCTS_STATE)).mappings().one())
            except DBAPIError:
                # Products half made (or not readable) must not take the market down with them.
                logger.exception("could not read the products: serving the marts without them")
    return DataState(
        as_of=marts["as_of"],
        symbol_sources=dict(marts["symbol_sources"]),
        recommendations_date=products.get("recommendations_date"),
        recommendations_model=products.get("recommendations_model"),
        recommendations_version=products.get("recommendations_version"),
        champions=dict(products.get("champions") or {}),
        models_registered_at=products.get("models_registered_at"),
        generation=generation,
        namespace_generations=namespace_generations,
    )


class StateHolder:
    """The current DataState of this worker, refreshed by a background task."""

    def __init__(self, load: Callable[[], Awaitable[DataState]], interval: float, deadline: float) -> None:
        self._load = load
        self._interval = interval
        self._deadline = deadline
        self.current: DataState | None = None
        self._task: asyncio.Task[None] | None = None
        # What the last refresh failed on: a failure is logged when it starts or changes, not every interval.
        self._failure: str | None = None

    async def refresh(self) -> DataState | None:
        try:
            self.current = await within(self._deadline, self._load(), what="the data state")
        except DBAPIError as error:
            if isinstance(error.orig, UndefinedTable):
                # A warehouse being built for the first time: expected, and no traceback to read.
                missing = str(error.orig).splitlines()[0]
                self._failed(f"the warehouse's tables are not built yet ({missing}): waiting for a run")
            else:
                self._failed("could not read the data state", trace=True)
        except Exception:
            # The last good state keeps serving; readiness reports PostgreSQL's own health separately.
            self._failed("could not read the data state", trace=True)
        else:
            if self._failure is not None:
                logger.info("the data state is readable again")
                self._failure = None
        return self.current

    def _failed(self, failure: str, *, trace: bool = False) -> None:
        if failure != self._failure:
            logger.warning(failure, exc_info=trace)
            self._failure = failure

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.refresh()

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._refresh_forever(), name="data-state-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
