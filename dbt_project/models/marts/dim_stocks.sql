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

smoothed_prices as (
    select * from {{ ref('int_prices_smoothed') }}
),

-- Each symbol's first and latest bar through the (symbol, date) indexes, and its trading days so far as of the
-- latest (history_days), rather than counting millions of rows on every run.
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
        first_bar.date as first_date,
        latest_bar.date as last_date,
        coalesce(latest_bar.history_days, 0) as trading_days_count
    from stocks
    left join lateral (
        select date from daily_prices
        where daily_prices.symbol = stocks.symbol
        order by date
        limit 1
    ) as first_bar on true
    left join lateral (
        select date, history_days from smoothed_prices
        where smoothed_prices.symbol = stocks.symbol
        order by date desc
        limit 1
    ) as latest_bar on true
)

select * from final
