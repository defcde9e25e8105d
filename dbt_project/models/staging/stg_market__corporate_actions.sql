-- One select, not the usual source/renamed CTEs: PostgreSQL inlines a view into the query that reads it only
-- when the view has no WITH clause, and only then can that query use raw's indexes (an incremental run's
-- per-symbol lookups).

select
    symbol::text as symbol,
    ex_date::date as ex_date,
    split_ratio::double precision as split_ratio,
    cash_dividend::double precision as cash_dividend,
    provider::text as provider,
    loaded_at::timestamptz as loaded_at
from {{ source('market', 'corporate_actions') }}
