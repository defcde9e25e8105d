-- The date index serves a window's data tests (get_where_subquery).
{{
    config(
        unique_key=['symbol', 'date'],
        indexes=[
            {'columns': ['symbol', 'date'], 'unique': true},
            {'columns': ['date']},
        ],
    )
}}
-- depends_on: {{ ref('stg_market__corporate_actions') }}
{%- set window = date_window() %}
{%- set resumes_stored_state = window is not none and is_incremental() %}
{%- set states = ['ema_12', 'ema_26', 'macd_signal', 'avg_gain_14', 'avg_loss_14', 'atr_14'] %}

with

adjusted_prices as (
    select * from {{ ref('int_prices_adjusted') }}
),

{%- if window %}

scope as (
    {{ incremental_scope(
        ref('int_prices_adjusted'), window, trading_days_before=1, restate_history=is_incremental()
    ) }}
),
{%- endif %}

{%- if resumes_stored_state %}

-- Where each symbol's recursions resume: the states stored for its last trading day before the window,
-- unless its history is restated or its Wilder averages had not warmed up yet.
stored_states as (
    select stored.*
    from {{ this }} as stored
    inner join scope
        on stored.symbol = scope.symbol
        and stored.date = scope.read_from
    where
        stored.date < {{ window.start }}
        and not scope.restates_history
        and stored.avg_gain_14 is not null
        and stored.atr_14 is not null
),
{%- endif %}

-- The rows to compute: after the resume point, or from the symbol's first trading day without one.
prices_in_scope as (
    select
        adjusted_prices.symbol,
        adjusted_prices.date,
        adjusted_prices.adj_high,
        adjusted_prices.adj_low,
        adjusted_prices.adj_close,
        adjusted_prices.previous_adj_close,
        {{ 'coalesce(stored_states.history_days, 0)' if resumes_stored_state else '0' }} as history_days_seed,
        {%- for state in states %}
        {{ 'stored_states.' ~ state if resumes_stored_state else 'null::double precision' }} as {{ state }}_seed
        {{- ',' if not loop.last }}
        {%- endfor %}
    {%- if window %}
    from scope
    {%- if resumes_stored_state %}
    left join stored_states on scope.symbol = stored_states.symbol
    {%- endif %}
    -- Bounds from the symbol's row, so that its prices are one range of the (symbol, date) index.
    inner join adjusted_prices
        on scope.symbol = adjusted_prices.symbol
        and adjusted_prices.date <= scope.read_to
        {%- if resumes_stored_state %}
        and adjusted_prices.date > coalesce(stored_states.date, '-infinity'::date)
        {%- endif %}
    {%- else %}
    from adjusted_prices
    {%- endif %}
),

price_moves as (
    select
        *,
        case when previous_adj_close is not null then greatest(adj_close - previous_adj_close, 0) end as gain,
        case when previous_adj_close is not null then greatest(previous_adj_close - adj_close, 0) end as loss,
        case
            when previous_adj_close is not null
                then greatest(
                    adj_high - adj_low,
                    abs(adj_high - previous_adj_close),
                    abs(adj_low - previous_adj_close)
                )
        end as true_range
    from prices_in_scope
),

-- Wilder's averages start at the simple mean of their first 14 values, on the row that completes them.
first_wilder_averages as (
    select
        *,
        {%- for value in ['gain', 'loss', 'true_range'] %}
        case
            when {{ value }} is not null and count({{ value }}) over symbol_history = 14
                then sum({{ value }}) over symbol_history / 14
        end as first_{{ value }}_average
        {{- ',' if not loop.last }}
        {%- endfor %}
    from price_moves
    window symbol_history as (
        partition by symbol order by date rows between unbounded preceding and current row
    )
),

averages as (
    select
        symbol,
        date,
        history_days_seed + row_number() over symbol_history as history_days,
        {{ target.schema }}.ema(adj_close, 12, ema_12_seed) over symbol_history as ema_12,
        {{ target.schema }}.ema(adj_close, 26, ema_26_seed) over symbol_history as ema_26,
        {{ target.schema }}.wilder_average(gain, 14, avg_gain_14_seed, first_gain_average) over symbol_history
            as avg_gain_14,
        {{ target.schema }}.wilder_average(loss, 14, avg_loss_14_seed, first_loss_average) over symbol_history
            as avg_loss_14,
        {{ target.schema }}.wilder_average(true_range, 14, atr_14_seed, first_true_range_average)
            over symbol_history as atr_14,
        macd_signal_seed
    from first_wilder_averages
    window symbol_history as (
        partition by symbol order by date rows between unbounded preceding and current row
    )
),

smoothed as (
    select
        symbol,
        date,
        history_days,
        ema_12,
        ema_26,
        {{ target.schema }}.ema(ema_12 - ema_26, 9, macd_signal_seed) over (
            partition by symbol order by date rows between unbounded preceding and current row
        ) as macd_signal,
        avg_gain_14,
        avg_loss_14,
        atr_14
    from averages
)

select * from smoothed
{%- if window %}
where {{ in_written_rows(window) }}
{%- endif %}
