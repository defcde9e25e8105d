"""Realized signal health on constructed cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from stockyard.analytics.signal_health import (
    IcDecay,
    ic_decay,
    realized_forward_returns,
    realized_signal_health,
    rolling_rank_ic,
)

DATES = pd.bdate_range("2024-06-03", periods=5)
# Over one day from DATES[0], A..E return 2%, 1%, 4%, 3% and 5%.
PRICES = pd.DataFrame(
    {
        "A": [100.0, 102, 102, 103, 104],
        "B": [100.0, 101, 99, 98, 97],
        "C": [100.0, 104, 104, 104, 104],
        "D": [100.0, 103, 103, 103, 103],
        "E": [100.0, 105, 106, 107, 108],
    },
    index=DATES,
)


def recommendations(date: pd.Timestamp, scores: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"date": date, "symbol": list("ABCDE"), "score": scores})


def test_realized_rank_ic_and_top_decile_by_hand():
    health = realized_signal_health(recommendations(DATES[0], [5, 4, 3, 2, 1]), PRICES, horizon=1)
    # Score ranks A..E are 5 4 3 2 1, return ranks 2 1 4 3 5: d = 3 3 -1 -1 -4, sum of d^2 = 36,
    # so Spearman = 1 - 6 * 36 / (5 * (25 - 1)) = -0.8.
    row = health.loc[DATES[0]]
    assert row["realized_rank_ic"] == pytest.approx(1 - 6 * 36 / (5 * 24))
    # A tenth of 5 symbols rounds down to none: the top decile is the single best score, A.
    assert row["top_decile_return"] == pytest.approx(0.02)
    assert row["universe_return"] == pytest.approx((0.02 + 0.01 + 0.04 + 0.03 + 0.05) / 5)
    assert row["symbols"] == 5


def test_only_dates_whose_horizon_has_passed_are_scored():
    tomorrow = DATES[-1] + pd.offsets.BDay()
    every_date = pd.concat([recommendations(date, [1, 2, 3, 4, 5]) for date in [*DATES, tomorrow]])
    health = realized_signal_health(every_date, PRICES, horizon=2)
    # The panel ends on DATES[4]: a 2-day horizon has passed for DATES[0..2] only.
    assert list(health.index) == list(DATES[:3])
    as_of = realized_signal_health(every_date, PRICES, horizon=2, as_of=DATES[3])
    assert list(as_of.index) == list(DATES[:2])
    assert as_of["realized_rank_ic"].tolist() == pytest.approx(health["realized_rank_ic"].iloc[:2].tolist())

    # A horizon longer than the panel so far has realized nothing yet.
    assert realized_signal_health(every_date, PRICES, horizon=2, as_of=DATES[1]).empty
    assert realized_forward_returns(PRICES, horizon=7).empty

    forward = realized_forward_returns(PRICES, horizon=2, as_of=DATES[3])
    assert forward.loc[forward["symbol"] == "B", "forward_return"].tolist() == pytest.approx(
        [99 / 100 - 1, 98 / 101 - 1]
    )


def test_rank_ic_matches_scipy_with_ties_and_missing_returns():
    rng = np.random.default_rng(7)
    symbols = [f"S{i:02d}" for i in range(40)]
    prices = pd.DataFrame(
        100 * np.exp(np.cumsum(rng.normal(0, 0.02, (8, 40)), axis=0)),
        index=pd.bdate_range("2024-01-01", periods=8),
        columns=symbols,
    )
    prices.iloc[5:, 0] = np.nan  # S00 stops trading: dates from the 3rd on have no realized return for it
    recs = pd.DataFrame(
        [(date, symbol, float(rng.integers(0, 6))) for date in prices.index for symbol in symbols],
        columns=["date", "symbol", "score"],
    )
    health = realized_signal_health(recs, prices, horizon=3)
    forward = realized_forward_returns(prices, horizon=3)
    for date, row in health.iterrows():
        day = recs.loc[recs["date"] == date].merge(forward, on=["date", "symbol"])
        assert row["symbols"] == len(day) == (40 if date < prices.index[2] else 39)
        assert row["realized_rank_ic"] == pytest.approx(
            stats.spearmanr(day["score"], day["forward_return"]).statistic
        )
        top = day.sort_values(["score", "symbol"], ascending=[False, True]).head(len(day) // 10)
        assert row["top_decile_return"] == pytest.approx(top["forward_return"].mean())


def test_constant_scores_have_no_ic():
    health = realized_signal_health(recommendations(DATES[0], [1, 1, 1, 1, 1]), PRICES, horizon=1)
    assert math.isnan(health.loc[DATES[0], "realized_rank_ic"])


def test_rolling_ic_and_decay():
    health = pd.DataFrame(
        {"realized_rank_ic": [0.10, 0.05, -0.02, -0.04, np.nan, -0.05]},
        index=pd.bdate_range("2024-01-01", periods=6),
    )
    rolling = rolling_rank_ic(health, window=3)
    # The date without an IC is skipped, not averaged as zero.
    assert rolling.iloc[-1] == pytest.approx((-0.02 - 0.04 - 0.05) / 3)
    assert rolling.iloc[:2].isna().all()

    decayed = ic_decay(health, window=3, floor=0.0)
    assert decayed == IcDecay(health.index[-1], pytest.approx(-0.11 / 3), 0.0, 3, decayed=True)
    assert not ic_decay(health, window=3, floor=-0.05).decayed
    too_short = ic_decay(health.iloc[:2], window=3, floor=0.0)
    assert math.isnan(too_short.rolling_rank_ic) and not too_short.decayed


@pytest.mark.parametrize(
    ("recs", "options", "message"),
    [
        (recommendations(DATES[0], [1, 2, 3, 4, 5]).iloc[0:0], {"horizon": 1}, "recommendations: no rows"),
        (recommendations(DATES[0], [1, 2, 3, 4, 5]), {"horizon": 0}, "horizon must be at least 1"),
        (
            recommendations(DATES[0], [1, 2, 3, 4, 5]).assign(symbol=list("ABCDZ")),
            {"horizon": 1},
            "unknown symbols.*Z",
        ),
        (
            recommendations(pd.Timestamp("2024-06-01"), [1, 2, 3, 4, 5]),
            {"horizon": 1},
            "dates of the price panel.*2024-06-01",
        ),
        (recommendations(DATES[0], [1, 2, np.nan, 4, 5]), {"horizon": 1}, "score must be finite"),
        (
            recommendations(DATES[0], [1, 2, 3, 4, 5]).drop(columns="score"),
            {"horizon": 1},
            "recommendations: missing column\\(s\\) score",
        ),
    ],
)
def test_bad_input_is_named(recs, options, message):
    with pytest.raises(ValueError, match=message):
        realized_signal_health(recs, PRICES, **options)
    with pytest.raises(ValueError, match="window must be at least 1"):
        rolling_rank_ic(pd.DataFrame({"realized_rank_ic": [0.1]}), window=0)
