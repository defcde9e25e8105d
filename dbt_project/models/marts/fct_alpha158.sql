{{
    config(
        materialized='incremental',
        unique_key=['symbol', 'date'],
        indexes=[
            {'columns': ['symbol', 'date'], 'unique': true},
            {'columns': ['date']},
        ],
    )
}}
-- depends_on: {{ ref('stg_market__corporate_actions') }}
{%- set window = date_window() %}
{#- Qlib's rolling windows, in trading days; the longest is the history an incremental run reads before its
    window (60 rows, and the row before the oldest for its change). -#}
{%- set windows = [5, 10, 20, 30, 60] %}
{%- set longest = windows | max %}
{#- Qlib's guard against a zero denominator, kept as Qlib writes it. -#}
{%- set epsilon = '1e-12' %}
{#- Qlib blanks a correlation or R-squared where a series' standard deviation over the window is this close
    to 0 (np.isclose(std, 0, atol=2e-05)). -#}
{%- set flat = '2e-5' %}

with

adjusted_prices as (
    select * from {{ ref('int_prices_adjusted') }}
),

smoothed_prices as (
    select * from {{ ref('int_prices_smoothed') }}
),

{%- if window %}

scope as (
    {{ incremental_scope(
        ref('int_prices_adjusted'), window, trading_days_before=longest, restate_history=is_incremental()
    ) }}
),
{%- endif %}

-- The bars to compute with the history before them, and the day-over-day series Qlib's expressions roll.
-- A change is null on a symbol's first row; every feature's warm-up keeps that row out of its window.
bars as (
    select
        adjusted_prices.symbol,
        adjusted_prices.date,
        smoothed_prices.history_days,
        adjusted_prices.adj_open as open,
        adjusted_prices.adj_high as high,
        adjusted_prices.adj_low as low,
        adjusted_prices.adj_close as close,
        adjusted_prices.adj_volume as volume,
        adjusted_prices.previous_adj_close as previous_close,
        lag(adjusted_prices.adj_volume) over symbol_history as previous_volume
    from adjusted_prices
    {%- if window %}
    inner join scope
        on adjusted_prices.symbol = scope.symbol
        and adjusted_prices.date between scope.read_from and scope.read_to
    {%- endif %}
    inner join smoothed_prices
        on adjusted_prices.symbol = smoothed_prices.symbol
        and adjusted_prices.date = smoothed_prices.date
    window symbol_history as (partition by adjusted_prices.symbol order by adjusted_prices.date)
),

daily_series as (
    select
        *,
        history_days::double precision as time_index,
        (close > previous_close)::integer as rose,
        (close < previous_close)::integer as fell,
        -- max(x, 0) and max(-x, 0), null where x is.
        (abs(close - previous_close) + (close - previous_close)) / 2 as close_gain,
        (abs(close - previous_close) - (close - previous_close)) / 2 as close_loss,
        (abs(volume - previous_volume) + (volume - previous_volume)) / 2 as volume_gain,
        (abs(volume - previous_volume) - (volume - previous_volume)) / 2 as volume_loss,
        abs(close / previous_close - 1) * volume as volume_weighted_move,
        ln(volume + 1) as log_volume,
        close / previous_close as close_ratio,
        -- Null after a day without volume (Qlib divides by zero there).
        ln(volume / nullif(previous_volume, 0) + 1) as log_volume_ratio
    from bars
),

-- Every window statistic in one pass over rows sorted once. Each frame is aggregated from its own rows, so
-- an incremental run computes exactly what a full build does.
rolling_statistics as (
    select
        *,
        {%- for days in windows %}
        lag(close, {{ days }}) over symbol_history as close_{{ days }}d_ago,
        lag(volume, {{ days }}) over symbol_history as volume_{{ days }}d_ago,
        avg(close) over last_{{ days }}_days as close_mean_{{ days }},
        stddev_samp(close) over last_{{ days }}_days as close_std_{{ days }},
        regr_slope(close, time_index) over last_{{ days }}_days as close_slope_{{ days }},
        max(high) over last_{{ days }}_days as high_max_{{ days }},
        min(low) over last_{{ days }}_days as low_min_{{ days }},
        corr(close, log_volume) over last_{{ days }}_days as close_volume_corr_{{ days }},
        stddev_samp(log_volume) over last_{{ days }}_days as log_volume_std_{{ days }},
        corr(close_ratio, log_volume_ratio) over last_{{ days }}_days as change_corr_{{ days }},
        stddev_samp(close_ratio) over last_{{ days }}_days as close_ratio_std_{{ days }},
        stddev_samp(log_volume_ratio) over last_{{ days }}_days as log_volume_ratio_std_{{ days }},
        count(log_volume_ratio) over last_{{ days }}_days as log_volume_ratio_count_{{ days }},
        avg(rose) over last_{{ days }}_days as rose_share_{{ days }},
        avg(fell) over last_{{ days }}_days as fell_share_{{ days }},
        sum(close_gain) over last_{{ days }}_days as close_gains_{{ days }},
        sum(close_loss) over last_{{ days }}_days as close_losses_{{ days }},
        avg(volume) over last_{{ days }}_days as volume_mean_{{ days }},
        stddev_samp(volume) over last_{{ days }}_days as volume_std_{{ days }},
        avg(volume_weighted_move) over last_{{ days }}_days as weighted_move_mean_{{ days }},
        stddev_samp(volume_weighted_move) over last_{{ days }}_days as weighted_move_std_{{ days }},
        sum(volume_gain) over last_{{ days }}_days as volume_gains_{{ days }},
        sum(volume_loss) over last_{{ days }}_days as volume_losses_{{ days }},
        {%- endfor %}
        -- The last `longest` closes, highs and lows, oldest first: the windows' order statistics below.
        array_agg(close) over last_{{ longest }}_days as closes,
        array_agg(high) over last_{{ longest }}_days as highs,
        array_agg(low) over last_{{ longest }}_days as lows
    from daily_series
    window
        symbol_history as (partition by symbol order by date),
        {%- for days in windows %}
        last_{{ days }}_days as (symbol_history rows between {{ days - 1 }} preceding and current row)
        {{- ',' if not loop.last }}
        {%- endfor %}
),

rows_to_write as (
    select * from rolling_statistics
    {%- if window %}
    where {{ in_written_rows(window) }}
    {%- endif %}
),

-- Per written row and window: the 20% and 80% quantiles of the closes (linear interpolation, as pandas),
-- and how many closes lie below the row's close and level with it (its rank, ties averaged). One sort of
-- the row's closes per window.
close_order as (
    select
        rows_to_write.symbol,
        rows_to_write.date,
        {%- for days in windows %}
        window_closes.quantiles_{{ days }},
        window_closes.below_{{ days }},
        window_closes.level_{{ days }}
        {{- ',' if not loop.last }}
        {%- endfor %}
    from rows_to_write
    cross join lateral (
        select
            {%- for days in windows %}
            {%- set in_window = 'position > cardinality(rows_to_write.closes) - ' ~ days %}
            percentile_cont(array[0.2, 0.8]) within group (order by window_close)
                filter (where {{ in_window }}) as quantiles_{{ days }},
            count(*) filter (where {{ in_window }} and window_close < rows_to_write.close) as below_{{ days }},
            count(*) filter (where {{ in_window }} and window_close = rows_to_write.close) as level_{{ days }}
            {{- ',' if not loop.last }}
            {%- endfor %}
        from unnest(rows_to_write.closes) with ordinality as unnested (window_close, position)
    ) as window_closes
    where rows_to_write.history_days >= {{ windows | min }}
),

features as (
    select
        rows_to_write.symbol,
        rows_to_write.date,
        rows_to_write.history_days,
        (rows_to_write.close - rows_to_write.open) / rows_to_write.open as kmid,
        (rows_to_write.high - rows_to_write.low) / rows_to_write.open as klen,
        (rows_to_write.close - rows_to_write.open) / (rows_to_write.high - rows_to_write.low + {{ epsilon }}) as kmid2,
        (rows_to_write.high - greatest(rows_to_write.open, rows_to_write.close)) / rows_to_write.open as kup,
        (rows_to_write.high - greatest(rows_to_write.open, rows_to_write.close))
            / (rows_to_write.high - rows_to_write.low + {{ epsilon }}) as kup2,
        (least(rows_to_write.open, rows_to_write.close) - rows_to_write.low) / rows_to_write.open as klow,
        (least(rows_to_write.open, rows_to_write.close) - rows_to_write.low)
            / (rows_to_write.high - rows_to_write.low + {{ epsilon }}) as klow2,
        (2 * rows_to_write.close - rows_to_write.high - rows_to_write.low) / rows_to_write.open as ksft,
        (2 * rows_to_write.close - rows_to_write.high - rows_to_write.low)
            / (rows_to_write.high - rows_to_write.low + {{ epsilon }}) as ksft2,
        rows_to_write.open / rows_to_write.close as open0,
        rows_to_write.high / rows_to_write.close as high0,
        rows_to_write.low / rows_to_write.close as low0,
        {%- for days in windows %}
        {%- set full = 'rows_to_write.history_days >= ' ~ days %}
        {%- set full_changes = 'rows_to_write.history_days > ' ~ days %}
        {#- The least-squares fit of the closes on 1..days: the time index's variance is (days^2 - 1) / 12. -#}
        {%- set time_variance = (days * days - 1) / 12 %}
        {#- The position (1 to `days`, oldest first) of the window's first highest high and first lowest low, as
            numpy's argmax + 1 and argmin + 1. -#}
        {%- set first_high = 'array_position(rows_to_write.highs, rows_to_write.high_max_' ~ days
            ~ ', cardinality(rows_to_write.highs) - ' ~ (days - 1) ~ ') - (cardinality(rows_to_write.highs) - '
            ~ days ~ ')' %}
        {%- set first_low = 'array_position(rows_to_write.lows, rows_to_write.low_min_' ~ days
            ~ ', cardinality(rows_to_write.lows) - ' ~ (days - 1) ~ ') - (cardinality(rows_to_write.lows) - '
            ~ days ~ ')' %}
        rows_to_write.close_{{ days }}d_ago / rows_to_write.close as roc{{ days }},
        case when {{ full }} then rows_to_write.close_mean_{{ days }} / rows_to_write.close end as ma{{ days }},
        case when {{ full }} then rows_to_write.close_std_{{ days }} / rows_to_write.close end as std{{ days }},
        case when {{ full }} then rows_to_write.close_slope_{{ days }} / rows_to_write.close end as beta{{ days }},
        case
            when {{ full }} and rows_to_write.close_std_{{ days }} > {{ flat }}
                then rows_to_write.close_slope_{{ days }} ^ 2 * {{ time_variance * days / (days - 1) }}
                / rows_to_write.close_std_{{ days }} ^ 2
        end as rsqr{{ days }},
        case
            when {{ full }}
                then (
                    rows_to_write.close - rows_to_write.close_mean_{{ days }}
                    - rows_to_write.close_slope_{{ days }} * {{ (days - 1) / 2 }}
                ) / rows_to_write.close
        end as resi{{ days }},
        case when {{ full }} then rows_to_write.high_max_{{ days }} / rows_to_write.close end as max{{ days }},
        case when {{ full }} then rows_to_write.low_min_{{ days }} / rows_to_write.close end as min{{ days }},
        case when {{ full }} then close_order.quantiles_{{ days }}[2] / rows_to_write.close end as qtlu{{ days }},
        case when {{ full }} then close_order.quantiles_{{ days }}[1] / rows_to_write.close end as qtld{{ days }},
        case
            when {{ full }}
                then (close_order.below_{{ days }} + (close_order.level_{{ days }} + 1) / 2.0)::double precision
                / {{ days }}
        end as rank{{ days }},
        case
            when {{ full }}
                then (rows_to_write.close - rows_to_write.low_min_{{ days }})
                / (rows_to_write.high_max_{{ days }} - rows_to_write.low_min_{{ days }} + {{ epsilon }})
        end as rsv{{ days }},
        case
            when {{ full }} then ({{ first_high }})::double precision / {{ days }}
        end as imax{{ days }},
        case
            when {{ full }} then ({{ first_low }})::double precision / {{ days }}
        end as imin{{ days }},
        case
            when {{ full }}
                then (
                    ({{ first_high }})
                    - ({{ first_low }})
                )::double precision / {{ days }}
        end as imxd{{ days }},
        case
            when {{ full }}
                and rows_to_write.close_std_{{ days }} > {{ flat }}
                and rows_to_write.log_volume_std_{{ days }} > {{ flat }}
                then rows_to_write.close_volume_corr_{{ days }}
        end as corr{{ days }},
        case
            when {{ full_changes }}
                and rows_to_write.log_volume_ratio_count_{{ days }} = {{ days }}
                and rows_to_write.close_ratio_std_{{ days }} > {{ flat }}
                and rows_to_write.log_volume_ratio_std_{{ days }} > {{ flat }}
                then rows_to_write.change_corr_{{ days }}
        end as cord{{ days }},
        case when {{ full_changes }} then rows_to_write.rose_share_{{ days }}::double precision end as cntp{{ days }},
        case when {{ full_changes }} then rows_to_write.fell_share_{{ days }}::double precision end as cntn{{ days }},
        case
            when {{ full_changes }}
                then (rows_to_write.rose_share_{{ days }} - rows_to_write.fell_share_{{ days }})::double precision
        end as cntd{{ days }},
        {%- for name, numerator in [
            ('sump', 'close_gains_' ~ days),
            ('sumn', 'close_losses_' ~ days),
            ('sumd', 'close_gains_' ~ days ~ ' - rows_to_write.close_losses_' ~ days),
        ] %}
        case
            when {{ full_changes }}
                then (rows_to_write.{{ numerator }})
                / (rows_to_write.close_gains_{{ days }} + rows_to_write.close_losses_{{ days }} + {{ epsilon }})
        end as {{ name }}{{ days }},
        {%- endfor %}
        case
            when {{ full }} then rows_to_write.volume_mean_{{ days }} / (rows_to_write.volume + {{ epsilon }})
        end as vma{{ days }},
        case
            when {{ full }} then rows_to_write.volume_std_{{ days }} / (rows_to_write.volume + {{ epsilon }})
        end as vstd{{ days }},
        case
            when {{ full_changes }}
                then rows_to_write.weighted_move_std_{{ days }}
                / (rows_to_write.weighted_move_mean_{{ days }} + {{ epsilon }})
        end as wvma{{ days }},
        {%- for name, numerator in [
            ('vsump', 'volume_gains_' ~ days),
            ('vsumn', 'volume_losses_' ~ days),
            ('vsumd', 'volume_gains_' ~ days ~ ' - rows_to_write.volume_losses_' ~ days),
        ] %}
        case
            when {{ full_changes }}
                then (rows_to_write.{{ numerator }})
                / (rows_to_write.volume_gains_{{ days }} + rows_to_write.volume_losses_{{ days }} + {{ epsilon }})
        end as {{ name }}{{ days }}
        {{- ',' if not (loop.last and days == longest) }}
        {%- endfor %}
        {%- endfor %}
    from rows_to_write
    left join close_order
        on rows_to_write.symbol = close_order.symbol
        and rows_to_write.date = close_order.date
)

select * from features
