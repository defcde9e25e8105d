{{
    config(
        indexes=[{'columns': ['symbol', 'ex_date'], 'unique': true}],
    )
}}

with

corporate_actions as (
    select * from {{ ref('stg_market__corporate_actions') }}
),

final as (
    select
        symbol,
        ex_date,
        split_ratio,
        cash_dividend
    from corporate_actions
)

select * from final
