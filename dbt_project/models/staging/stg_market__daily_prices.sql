-- One select, not the usual source/renamed CTEs: PostgreSQL inlines a view into the query that reads it only
-- when the view has no WITH clause, and only then can that query use raw's indexes (an incremental run's
-- per-symbol lookups).

select
    symbol::text as symbol,
    date::date as date,
    open::double precision as open,
    high::double precision as high,
    low::double precision as low,
    close::double precision as close,
    volume::bigint as volume,
    provider::text as provider,
    loaded_at::timestamptz as loaded_at
from {{ source('market', 'daily_prices') }}
