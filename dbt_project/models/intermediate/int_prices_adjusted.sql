{{
    config(
        unique_key=['symbol', 'date'],
        indexes=[
            {'columns': ['symbol', 'date'], 'unique': true},
            {'columns': ['date']},
        ],
    )
}}
{%- set window = date_window() %}

with

daily_prices as (
    select * from {{ ref('stg_market__daily_prices') }}
),

corporate_actions as (
    select * from {{ ref('stg_market__corporate_actions') }}
),

{%- if window %}

scope as (
    {{ incremental_scope(
        ref('stg_market__daily_prices'), window, trading_days_before=1, restate_history=is_incremental()
    ) }}
),
{%- endif %}

-- The bars to adjust: the window's, each symbol's last one before it (for the previous close), and the
-- whole history of restated symbols.
bars_in_scope as (
    select daily_prices.*
    from daily_prices
    {%- if window %}
    inner join scope
        on daily_prices.symbol = scope.symbol
        and daily_prices.date between scope.read_from and scope.read_to
    {%- endif %}
),

-- What each action multiplies the prices before its ex-date by: the dividend's share of the previous close
-- taken out, then the split. An action before a symbol's first bar adjusts nothing and drops out here.
action_factors as (
    select
        corporate_actions.symbol,
        corporate_actions.ex_date,
        corporate_actions.split_ratio,
        (1 - corporate_actions.cash_dividend / previous_bar.close) / corporate_actions.split_ratio
            as price_factor
    from corporate_actions
    cross join lateral (
        select daily_prices.close
        from daily_prices
        where
            daily_prices.symbol = corporate_actions.symbol
            and daily_prices.date < corporate_actions.ex_date
        order by daily_prices.date desc
        limit 1
    ) as previous_bar
),

-- A bar's factor is the product of the factors of every action going ex after it, so it is constant from
-- one ex-date up to the day before the next.
adjustment_periods as (
    select
        symbol,
        lag(ex_date, 1, '-infinity'::date) over (partition by symbol order by ex_date) as applies_from,
        ex_date as applies_before,
        {{ target.schema }}.product(price_factor) over later_actions as price_adjustment_factor,
        {{ target.schema }}.product(split_ratio) over later_actions as volume_adjustment_factor
    from action_factors
    window later_actions as (
        partition by symbol order by ex_date desc rows between unbounded preceding and current row
    )
),

bars_with_factors as (
    select
        bars_in_scope.symbol,
        bars_in_scope.date,
        bars_in_scope.open,
        bars_in_scope.high,
        bars_in_scope.low,
        bars_in_scope.close,
        bars_in_scope.volume,
        coalesce(adjustment_periods.price_adjustment_factor, 1) as price_adjustment_factor,
        coalesce(adjustment_periods.volume_adjustment_factor, 1) as volume_adjustment_factor,
        bars_in_scope.provider
    from bars_in_scope
    left join adjustment_periods
        on bars_in_scope.symbol = adjustment_periods.symbol
        and bars_in_scope.date >= adjustment_periods.applies_from
        and bars_in_scope.date < adjustment_periods.applies_before
),

adjusted_prices as (
    select
        symbol,
        date,
        open,
        high,
        low,
        close,
        volume,
        price_adjustment_factor,
        volume_adjustment_factor,
        open * price_adjustment_factor as adj_open,
        high * price_adjustment_factor as adj_high,
        low * price_adjustment_factor as adj_low,
        close * price_adjustment_factor as adj_close,
        volume * volume_adjustment_factor as adj_volume,
        provider
    from bars_with_factors
),

with_returns as (
    select
        *,
        lag(adj_close) over symbol_history as previous_adj_close,
        adj_close / lag(adj_close) over symbol_history - 1 as return_1d
    from adjusted_prices
    window symbol_history as (partition by symbol order by date)
)

select * from with_returns
{%- if window %}
where {{ in_written_rows(window) }}
{%- endif %}
