{% macro create_window_aggregates() %}
{#- The aggregates the models use as window functions ordered by date, created in the target schema by
    on-run-start. Each one's state is a plain value, so an incremental run can resume a recursion from the
    value stored for the last row before its window (the `seed` argument) and get exactly what a full build
    gets. -#}
{%- set schema = target.schema -%}
-- Runs that start together (e.g. two orchestrator jobs) would otherwise race on the catalog rows.
select pg_advisory_xact_lock(hashtext('stockyard.create_window_aggregates'));

create schema if not exists {{ schema }};

-- product(value): the running product of the non-null values (cumulative adjustment factors).
create or replace aggregate {{ schema }}.product(double precision) (
    sfunc = float8mul,
    stype = double precision
);

-- ema(value, span, seed): the exponential moving average of pandas' ewm(span=span, adjust=False):
-- alpha = 2 / (span + 1), average = alpha * value + (1 - alpha) * previous average, started at the first
-- value, or at `seed` (the average of the row before the first one) when it is given. Nulls are skipped.
create or replace function {{ schema }}.ema_step(
    average double precision, value double precision, span integer, seed double precision
) returns double precision language plpgsql immutable parallel safe as $$
declare
    alpha constant double precision := 2 / (span + 1)::double precision;
begin
    if value is null then
        return average;
    end if;
    average := coalesce(average, seed);
    if average is null then
        return value;
    end if;
    return alpha * value + (1 - alpha) * average;
end
$$;

create or replace aggregate {{ schema }}.ema(double precision, integer, double precision) (
    sfunc = {{ schema }}.ema_step,
    stype = double precision
);

-- wilder_average(value, periods, seed, first_average): Wilder's smoothing (RSI, ATR): null until `periods`
-- values have been seen, then their simple mean, then average = (previous average * (periods - 1) + value) /
-- periods. The caller passes the simple mean as `first_average` on the row completing the first `periods`
-- values (null elsewhere), which keeps the state a plain number; `seed` is the average of the row before the
-- first one, when resuming. Nulls are skipped.
create or replace function {{ schema }}.wilder_step(
    average double precision,
    value double precision,
    periods integer,
    seed double precision,
    first_average double precision
) returns double precision language plpgsql immutable parallel safe as $$
begin
    if value is null then
        return average;
    end if;
    average := coalesce(average, seed);
    if average is null then
        return first_average;
    end if;
    return (average * (periods - 1) + value) / periods;
end
$$;

create or replace aggregate {{ schema }}.wilder_average(
    double precision, integer, double precision, double precision
) (
    sfunc = {{ schema }}.wilder_step,
    stype = double precision
);

-- moments_state(value) and regression_state(y, x): what stddev_samp(value) and regr_slope(y, x), corr(y, x)
-- accumulate, (N, Sx, Sxx) and (N, Sx, Sxx, Sy, Syy, Sxy), returned as they are, so that a model can merge two
-- windows' states (float8_combine, float8_regr_combine) and finish them (float8_stddev_samp, float8_regr_slope,
-- float8_corr, ...) with PostgreSQL's own functions for those aggregates. Nulls are skipped.
create or replace aggregate {{ schema }}.moments_state(double precision) (
    sfunc = float8_accum,
    stype = double precision[],
    initcond = '{0,0,0}'
);

create or replace aggregate {{ schema }}.regression_state(double precision, double precision) (
    sfunc = float8_regr_accum,
    stype = double precision[],
    initcond = '{0,0,0,0,0,0}'
);
{% endmacro %}
