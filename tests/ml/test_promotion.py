"""The promotion rule: a challenger becomes champion only by beating it by more than the margin."""

from __future__ import annotations

import math

from ml.config import MLSettings
from ml.promotion import PromotionRule, decide

RULE = PromotionRule(metric="rank_ic", min_improvement=0.005)
WINDOW = "2021-01-04..2021-12-23"


def test_first_version_becomes_champion() -> None:
    decision = decide(RULE, evaluation_window=WINDOW, challenger_version="1", challenger_value=0.01)
    assert decision.promoted and decision.alias == "champion" and decision.reason == "no champion yet"


def test_beating_the_champion_by_the_margin_promotes() -> None:
    decision = decide(
        RULE,
        evaluation_window=WINDOW,
        challenger_version="3",
        challenger_value=0.031,
        champion_version="2",
        champion_value=0.025,
        champion_source="logged",
    )
    assert decision.promoted and decision.alias == "champion"
    assert "+0.00600" in decision.reason and WINDOW in decision.reason


def test_falling_short_of_the_margin_stays_challenger_and_says_why() -> None:
    decision = decide(
        RULE,
        evaluation_window=WINDOW,
        challenger_version="3",
        challenger_value=0.029,
        champion_version="2",
        champion_value=0.025,
        champion_source="re-evaluated",
    )
    assert not decision.promoted and decision.alias == "challenger"
    assert "improvement +0.00400, required more than 0.00500" in decision.reason
    recorded = decision.to_dict()
    assert recorded["alias"] == "challenger" and recorded["champion_version"] == "2"
    assert recorded["rule"] == {"metric": "rank_ic", "min_improvement": 0.005, "higher_is_better": True}


def test_lower_is_better_metrics_and_missing_values() -> None:
    mape = PromotionRule(metric="mape", min_improvement=0.01, higher_is_better=False)
    assert decide(
        mape,
        evaluation_window=WINDOW,
        challenger_version="2",
        challenger_value=0.05,
        champion_version="1",
        champion_value=0.07,
    ).promoted
    assert not decide(
        RULE,
        evaluation_window=WINDOW,
        challenger_version="2",
        challenger_value=math.nan,
        champion_version="1",
        champion_value=0.01,
    ).promoted
    assert decide(
        RULE,
        evaluation_window=WINDOW,
        challenger_version="2",
        challenger_value=0.01,
        champion_version="1",
        champion_value=math.nan,
    ).promoted


def test_rule_from_settings(monkeypatch) -> None:
    monkeypatch.setenv("STOCKYARD_ML_PROMOTION_MIN_IMPROVEMENT", "0.02")
    assert PromotionRule.from_settings(MLSettings()) == PromotionRule(metric="rank_ic", min_improvement=0.02)
