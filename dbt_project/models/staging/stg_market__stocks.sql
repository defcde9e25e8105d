with

source as (
    select * from {{ source('market', 'stocks') }}
),

renamed as (
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
    from source
)

select * from renamed
