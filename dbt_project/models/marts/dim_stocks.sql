-- The last two indexes serve the API's search: symbol prefixes, and word prefixes of the name (full text).
{{
    config(
        indexes=[
            {'columns': ['symbol'], 'unique': true},
            {'columns': ['sector']},
            {'columns': ['symbol text_pattern_ops']},
            {'columns': ["(to_tsvector('simple', coalesce(company_name, '')))"], 'type': 'gin'},
        ],
    )
}}

with

stocks as (
    select * from {{ ref('stg_market__stocks') }}
),

daily_prices as (
    select * from {{ ref('fct_daily_prices') }}
),

trading_history as (
    select
        symbol,
        min(date) as first_date,
        max(date) as last_date,
        count(*) as trading_days_count
    from daily_prices
    group by symbol
),

final as (
    select
        stocks.symbol,
        stocks.company_name,
        stocks.sector,
        stocks.industry,
        stocks.market_cap,
        stocks.currency,
        stocks.exchange,
        stocks.provider,
        stocks.is_synthetic,
        trading_history.first_date,
        trading_history.last_date,
        coalesce(trading_history.trading_days_count, 0) as trading_days_count
    from stocks
    left join trading_history on stocks.symbol = trading_history.symbol
)

select * from final
