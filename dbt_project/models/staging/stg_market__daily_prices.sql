with

source as (
    select * from {{ source('market', 'daily_prices') }}
),

renamed as (
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
    from source
)

select * from renamed
