with

source as (
    select * from {{ source('market', 'corporate_actions') }}
),

renamed as (
    select
        symbol::text as symbol,
        ex_date::date as ex_date,
        split_ratio::double precision as split_ratio,
        cash_dividend::double precision as cash_dividend,
        provider::text as provider,
        loaded_at::timestamptz as loaded_at
    from source
)

select * from renamed
