-- One select, not the usual source/renamed CTEs: PostgreSQL inlines a view into the query that reads it only
-- when the view has no WITH clause, and only then can that query use raw's indexes (an incremental run's
-- per-symbol lookups).

select
    symbol::text as symbol,
    name::text as company_name,
    sector::text as sector,
    industry::text as industry,
    market_cap::double precision as market_cap,
    currency::text as currency,
    exchange::text as exchange,
    provider::text as provider,
    is_synthetic::boolean as is_synthetic,
    loaded_at::timestamptz as loaded_at
from {{ source('market', 'stocks') }}
