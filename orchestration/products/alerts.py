"""alert_hits: the users' saved screens and alerts run on the day's data once the recommendations are made,
their hits stored (app.hits) and pushed to their owners over Redis pub/sub (the API's websocket), with a
'recommendations refreshed' message to every connected client.

Thin over stockyard.screens (the evaluation) and stockyard.live (the channels). The hits commit before they
are published, and a date evaluated again stores and publishes nothing new.
"""

import dagster as dg
import redis
from sqlalchemy import create_engine, select
from sqlalchemy.pool import StaticPool

from orchestration.products.assets import PRODUCTS_GROUP, RECOMMENDATIONS
from orchestration.resources import ApiCacheResource, WarehouseResource
from stockyard.db.catalogue import recommendations

ALERT_HITS = dg.AssetKey("alert_hits")


@dg.asset(
    key=ALERT_HITS,
    group_name=PRODUCTS_GROUP,
    deps=[RECOMMENDATIONS],
    kinds={"python", "postgres", "redis"},
    description="app.hits: what each user's active screens and alerts found on the latest data date (a "
    "screen's matching symbols, a price crossing its level, a symbol entering the top N), stored once and "
    "pushed to the owner's websocket; every connected client is told the recommendations were refreshed.",
)
def alert_hits(warehouse_db: WarehouseResource, api_cache: ApiCacheResource) -> dg.MaterializeResult[None]:
    from stockyard.live import publish, refreshed_message
    from stockyard.screens import evaluate

    with warehouse_db.connect() as connection:
        # SQLAlchemy over the resource's own connection: stockyard.screens compiles its statements.
        engine = create_engine("postgresql+psycopg://", creator=lambda: connection, poolclass=StaticPool)
        with engine.begin() as conn:
            evaluation = evaluate(conn)
            version = (
                conn.execute(
                    select(recommendations.c.model_version)
                    .where(recommendations.c.date == evaluation.data_date)
                    .limit(1)
                ).scalar_one_or_none()
                if evaluation.data_date is not None
                else None
            )
    log = dg.get_dagster_logger()
    for screen_id, problem in evaluation.invalid_screens.items():
        log.warning("screen %s was skipped: its stored conditions no longer validate: %s", screen_id, problem)
    delivered = None
    if evaluation.data_date is not None:
        try:
            delivered = publish(
                api_cache.redis_url,
                to_users=[(hit.user_id, hit.message()) for hit in evaluation.new_hits],
                to_all=[refreshed_message(evaluation.data_date, model_version=version)],
                cache_prefix=api_cache.prefix,
            )
        except redis.RedisError as error:
            # The hits are stored: clients read them from GET /api/v1/hits when the push is lost.
            log.warning("could not publish the hits at %s: %s", api_cache.redis_url, error)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(evaluation.new_hits),
            "data_date": str(evaluation.data_date),
            "screens": evaluation.screens,
            "alerts": evaluation.alerts,
            "users_notified": len({hit.user_id for hit in evaluation.new_hits}),
            "invalid_screens": len(evaluation.invalid_screens),
            "deliveries": delivered if delivered is not None else -1,
        }
    )
