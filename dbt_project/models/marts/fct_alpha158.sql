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
{#- The statistics of each window (name, its aggregate over 5 rows, how two windows' values combine), and how
    the longer windows are made of shorter ones (days, recent, older): the `recent` days up to the row and the
    `older` days before them. -#}
{%- set statistics = [
    ('close_fit', target.schema ~ '.regression_state(close, time_index)', 'float8_regr_combine'),
    ('close_volume_fit', target.schema ~ '.regression_state(close, log_volume)', 'float8_regr_combine'),
    ('change_fit', target.schema ~ '.regression_state(close_ratio, log_volume_ratio)', 'float8_regr_combine'),
    ('volume_moments', target.schema ~ '.moments_state(volume)', 'float8_combine'),
    ('weighted_move_moments', target.schema ~ '.moments_state(volume_weighted_move)', 'float8_combine'),
    ('close_gains', 'sum(close_gain)', '+'),
    ('close_losses', 'sum(close_loss)', '+'),
    ('volume_gains', 'sum(volume_gain)', '+'),
    ('volume_losses', 'sum(volume_loss)', '+'),
    ('rises', 'sum(rose)', '+'),
    ('falls', 'sum(fell)', '+'),
    ('high_max', 'max(high)', 'greatest'),
    ('low_min', 'min(low)', 'least'),
] %}
{#- Where the window's first highest high and first lowest low fall, 1 (its oldest row) to its length, as numpy's
    argmax + 1 and argmin + 1: (name, the extreme's statistic, the price, how an older extreme keeps its place).
    Of two windows' extremes the older one's position stands when it is at least as high (as low); otherwise
    the recent one's, after the older window's days. -#}
{%- set first_extremes = [('first_high', 'high_max', 'high', '>='), ('first_low', 'low_min', 'low', '<=')] %}
{%- set compositions = [(10, 5, 5), (20, 10, 10), (30, 20, 10), (60, 30, 30)] %}

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
        (close > previous_close)::integer::double precision as rose,
        (close < previous_close)::integer::double precision as fell,
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

-- Each window's statistics, built up from windows of 5 days: a window of 10 days ending on a row is the 5
-- days up to the row and the 5 days up to 5 rows before, and so on (`compositions`). Sums add, extremes take
-- the greater or lesser, and the moments and least-squares fits are the aggregate states PostgreSQL's own
-- stddev_samp, corr and regr_slope keep ((N, Sx, Sxx) and (N, Sx, Sxx, Sy, Syy, Sxy)), merged by its own
-- combine functions and finished by its own final functions. One aggregate over 5 rows per statistic rather
-- than one per statistic and window, and every value is made from the window's rows alone, so an incremental
-- run computes exactly what a full build does.
statistics_5 as (
    select
        *,
        {%- for name, aggregate, _ in statistics %}
        {{ aggregate }} over last_5_days as {{ name }}_5,
        {%- endfor %}
        {%- for name, extreme, price, _ in first_extremes %}
        {%- set aggregate = extreme.split('_')[1] ~ '(' ~ price ~ ') over last_5_days' %}
        case
            {%- for rows_back in range(4, 0, -1) %}
            when lag({{ price }}, {{ rows_back }}) over symbol_history = {{ aggregate }} then {{ 5 - rows_back }}
            {%- endfor %}
            else 5
        end as {{ name }}_5
        {{- ',' if not loop.last }}
        {%- endfor %}
    from daily_series
    window
        symbol_history as (partition by symbol order by date),
        last_5_days as (symbol_history rows between 4 preceding and current row)
),
{%- for days, recent, older in compositions %}

statistics_{{ days }} as (
    select
        *,
        {%- set last_level = loop.last %}
        {%- for name, _, combine in statistics %}
        {%- set earlier = 'lag(' ~ name ~ '_' ~ older ~ ', ' ~ recent ~ ') over symbol_history' %}
        {%- if combine == '+' %}
        {{ name }}_{{ recent }} + {{ earlier }} as {{ name }}_{{ days }}
        {%- else %}
        {{ combine }}({{ name }}_{{ recent }}, {{ earlier }}) as {{ name }}_{{ days }}
        {%- endif %}
        {{- ',' }}
        {%- endfor %}
        {%- for name, extreme, _, keeps_place in first_extremes %}
        case
            when lag({{ extreme }}_{{ older }}, {{ recent }}) over symbol_history {{ keeps_place }} {{ extreme }}_{{ recent }}
                then lag({{ name }}_{{ older }}, {{ recent }}) over symbol_history
            else {{ older }} + {{ name }}_{{ recent }}
        end as {{ name }}_{{ days }}
        {{- ',' if not loop.last or last_level }}
        {%- endfor %}
        {%- if last_level %}
        {%- for lagged_days in windows %}
        lag(close, {{ lagged_days }}) over symbol_history as close_{{ lagged_days }}d_ago,
        {%- endfor %}
        -- The last `longest` closes, oldest first: the windows' quantiles and ranks below.
        array_agg(close) over last_{{ longest }}_days as closes
        {%- endif %}
    from statistics_{{ ([5] + compositions | map(attribute=0) | list)[loop.index0] }}
    window
        symbol_history as (partition by symbol order by date),
        last_{{ longest }}_days as (symbol_history rows between {{ longest - 1 }} preceding and current row)
),
{%- endfor %}

rows_to_write as (
    select
        *,
        -- The position in `closes` after which each window starts (compared once per close below).
        {%- for days in windows %}
        cardinality(closes) - {{ days }} as closes_before_{{ days }}
        {{- ',' if not loop.last }}
        {%- endfor %}
    from statistics_{{ longest }}
    {%- if window %}
    where {{ in_written_rows(window) }}
    {%- endif %}
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
        {%- set close_fit = 'rows_to_write.close_fit_' ~ days %}
        {%- set close_volume_fit = 'rows_to_write.close_volume_fit_' ~ days %}
        {%- set change_fit = 'rows_to_write.change_fit_' ~ days %}
        {#- Standard deviations from the fits' sums of squares: of the closes (y) and of the second series (x). -#}
        {%- set close_std = 'sqrt(float8_regr_syy(' ~ close_fit ~ ') / ' ~ (days - 1) ~ ')' %}
        {%- set log_volume_std = 'sqrt(float8_regr_sxx(' ~ close_volume_fit ~ ') / ' ~ (days - 1) ~ ')' %}
        {%- set close_ratio_std = 'sqrt(float8_regr_syy(' ~ change_fit ~ ') / ' ~ (days - 1) ~ ')' %}
        {%- set log_volume_ratio_std = 'sqrt(float8_regr_sxx(' ~ change_fit ~ ') / ' ~ (days - 1) ~ ')' %}
        rows_to_write.close_{{ days }}d_ago / rows_to_write.close as roc{{ days }},
        case when {{ full }} then float8_regr_avgy({{ close_fit }}) / rows_to_write.close end as ma{{ days }},
        case when {{ full }} then {{ close_std }} / rows_to_write.close end as std{{ days }},
        case when {{ full }} then float8_regr_slope({{ close_fit }}) / rows_to_write.close end as beta{{ days }},
        case when {{ full }} and {{ close_std }} > {{ flat }} then float8_regr_r2({{ close_fit }}) end as rsqr{{ days }},
        -- The last close less the fit's value on its day, the mean day of the window's being (days - 1) / 2 before.
        case
            when {{ full }}
                then (
                    rows_to_write.close - float8_regr_avgy({{ close_fit }})
                    - float8_regr_slope({{ close_fit }}) * {{ (days - 1) / 2 }}
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
        case when {{ full }} then rows_to_write.first_high_{{ days }}::double precision / {{ days }} end as imax{{ days }},
        case when {{ full }} then rows_to_write.first_low_{{ days }}::double precision / {{ days }} end as imin{{ days }},
        case
            when {{ full }}
                then (rows_to_write.first_high_{{ days }} - rows_to_write.first_low_{{ days }})::double precision
                / {{ days }}
        end as imxd{{ days }},
        case
            when {{ full }} and {{ close_std }} > {{ flat }} and {{ log_volume_std }} > {{ flat }}
                then float8_corr({{ close_volume_fit }})
        end as corr{{ days }},
        -- The fit counts the pairs it was given: fewer than `days` after a day without volume.
        case
            when {{ full_changes }}
                and ({{ change_fit }})[1] = {{ days }}
                and {{ close_ratio_std }} > {{ flat }}
                and {{ log_volume_ratio_std }} > {{ flat }}
                then float8_corr({{ change_fit }})
        end as cord{{ days }},
        case when {{ full_changes }} then rows_to_write.rises_{{ days }} / {{ days }} end as cntp{{ days }},
        case when {{ full_changes }} then rows_to_write.falls_{{ days }} / {{ days }} end as cntn{{ days }},
        case
            when {{ full_changes }} then (rows_to_write.rises_{{ days }} - rows_to_write.falls_{{ days }}) / {{ days }}
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
            when {{ full }}
                then float8_avg(rows_to_write.volume_moments_{{ days }}) / (rows_to_write.volume + {{ epsilon }})
        end as vma{{ days }},
        case
            when {{ full }}
                then float8_stddev_samp(rows_to_write.volume_moments_{{ days }}) / (rows_to_write.volume + {{ epsilon }})
        end as vstd{{ days }},
        case
            when {{ full_changes }}
                then float8_stddev_samp(rows_to_write.weighted_move_moments_{{ days }})
                / (float8_avg(rows_to_write.weighted_move_moments_{{ days }}) + {{ epsilon }})
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
    -- Per row and window: the 20% and 80% quantiles of the closes (linear interpolation, as pandas), and how
    -- many closes lie below the row's close and level with it (its rank, ties averaged). One sort of the row's
    -- closes per window.
    cross join lateral (
        select
            {%- for days in windows %}
            {%- set in_window = 'position > rows_to_write.closes_before_' ~ days %}
            percentile_cont(array[0.2, 0.8]) within group (order by window_close)
                filter (where {{ in_window }}) as quantiles_{{ days }},
            count(*) filter (where {{ in_window }} and window_close < rows_to_write.close) as below_{{ days }},
            count(*) filter (where {{ in_window }} and window_close = rows_to_write.close) as level_{{ days }}
            {{- ',' if not loop.last }}
            {%- endfor %}
        from unnest(rows_to_write.closes) with ordinality as unnested (window_close, position)
    ) as close_order
)

select * from features
