"""Recommendations from the champion: complete and consistent per date, explained by XGBoost's own
contributions, with a calibration fitted on the walk-forward's out-of-sample predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.datasets import Dataset
from ml.models.ensemble import SeedEnsemble
from ml.recommendations import (
    BIAS,
    Champion,
    RecommendationConfig,
    feature_contributions,
    fit_calibration,
    load_champion,
    recommend,
)
from ml.tracking import configure_tracking
from ml.training import TrainingResult
from stockyard.product_settings import ProductSettings, get_product_settings
from stockyard.products import RECOMMENDATION_COLUMNS


def rows_of(dataset: Dataset, position: int) -> pd.DataFrame:
    return dataset.rows(dataset.dates[[position]])


def recommendations(champion: Champion, rows: pd.DataFrame, **options) -> pd.DataFrame:
    return recommend(
        champion.model,
        rows,
        champion.calibration,
        model_name=champion.model_name,
        model_version=champion.version,
        **options,
    )


def test_champion_is_the_trained_version(champion: Champion, trained: TrainingResult) -> None:
    assert (champion.model_name, champion.version, champion.run_id) == (
        trained.model_name,
        trained.model_version,
        trained.run_id,
    )
    # Calibrated on every out-of-sample prediction of the walk-forward (2 folds of 60 dates, 30 symbols).
    assert len(champion.out_of_sample) == champion.calibration.rows == 2 * 60 * 30
    assert {"date", "symbol", "prediction", "target", "fold"} <= set(champion.out_of_sample.columns)


def test_recommendations_are_complete_and_consistent(champion: Champion, market: Dataset) -> None:
    rows = rows_of(market, -1)
    day = rows["date"].iloc[0].date()
    recs = recommendations(champion, rows)

    assert list(recs.columns) == list(RECOMMENDATION_COLUMNS)
    assert sorted(recs["symbol"]) == sorted(rows["symbol"])
    assert recs["rank"].tolist() == list(range(1, len(rows) + 1))
    assert recs["score"].is_monotonic_decreasing
    expected_scores = champion.model.predict(market, market.dates[[-1]])
    by_symbol = pd.Series(expected_scores.to_numpy(), index=rows["symbol"].to_numpy())
    np.testing.assert_allclose(recs["score"], by_symbol[recs["symbol"]].to_numpy())
    at_or_below = [(recs["score"] <= score).mean() for score in recs["score"]]
    np.testing.assert_allclose(recs["percentile"], at_or_below)
    assert (recs["date"] == day).all() and (recs["data_date"] == day).all()
    assert set(recs["model_version"]) == {champion.version}

    # The default thresholds: above the 90th percentile buy, at or below the 10th sell.
    expected = np.select(
        [recs["percentile"] > 0.9, recs["percentile"] <= 0.1], ["buy", "sell"], default="hold"
    )
    assert recs["action"].tolist() == expected.tolist()
    assert recs["action"].value_counts().to_dict() == {"hold": 24, "buy": 3, "sell": 3}
    # A better rank never expects less; confidence is a probability.
    assert recs["expected_excess_return"].is_monotonic_decreasing
    assert recs["confidence"].between(0, 1).all()
    assert recs["expected_excess_return"].iloc[0] > 0 > recs["expected_excess_return"].iloc[-1]


def test_contributions_sum_with_the_bias_to_the_prediction(champion: Champion, market: Dataset) -> None:
    dates = market.dates[[-1, -100, -200]]
    rows = market.rows(dates)
    contributions = feature_contributions(champion.model, rows)
    assert list(contributions.columns) == [*market.features, BIAS]
    np.testing.assert_allclose(
        contributions.sum(axis=1), champion.model.predict(market, dates), rtol=0, atol=1e-5
    )


def test_top_contributions_are_the_largest(champion: Champion, market: Dataset) -> None:
    rows = rows_of(market, -1)
    recs = recommendations(champion, rows, config=RecommendationConfig(top_contributions=3))
    contributions = feature_contributions(champion.model, rows).set_axis(rows["symbol"].to_numpy())
    inputs = rows.set_index("symbol")
    for symbol, top in zip(recs["symbol"], recs["top_contributions"], strict=True):
        largest = contributions.loc[symbol].drop(BIAS).abs().sort_values(ascending=False).index[:3]
        assert [item["feature"] for item in top] == list(largest)
        for item in top:
            assert item["contribution"] == pytest.approx(contributions.loc[symbol, item["feature"]])
            assert item["value"] == pytest.approx(inputs.loc[symbol, item["feature"]])
    # The market's signal is the feature that moves the scores most.
    firsts = [top[0]["feature"] for top in recs["top_contributions"]]
    assert firsts.count("feature_0") > len(firsts) / 2


def test_an_ensemble_champion_scores_by_mean_rank_and_explains_by_mean_contributions(
    ensemble_champion: Champion, market: Dataset
) -> None:
    model = ensemble_champion.model
    assert model.seeds == (7, 11)
    rows = rows_of(market, -1)
    recs = recommendations(ensemble_champion, rows).set_index("symbol")
    symbols = rows["symbol"].to_numpy()

    # The score: the mean of the two boosters' percentile ranks among the date's symbols.
    ranks = [
        pd.Series(member.predict_frame(rows), index=symbols).rank(pct=True)
        for member in model.members.values()
    ]
    np.testing.assert_allclose(recs.loc[symbols, "score"], (ranks[0] + ranks[1]) / 2)

    # The explanation: the mean of each seed's contributions (each summing to its own booster's score).
    singles = [
        feature_contributions(SeedEnsemble({seed: member}), rows) for seed, member in model.members.items()
    ]
    mean = (singles[0] + singles[1]) / 2
    pd.testing.assert_frame_equal(feature_contributions(model, rows), mean)
    mean = mean.set_axis(symbols)
    for symbol, top in recs["top_contributions"].items():
        largest = mean.loc[symbol].drop(BIAS).abs().sort_values(ascending=False).index[:5]
        assert [item["feature"] for item in top] == list(largest)
        assert [item["contribution"] for item in top] == pytest.approx(mean.loc[symbol, largest].tolist())


def test_actions_follow_configured_thresholds(champion: Champion, market: Dataset) -> None:
    config = RecommendationConfig(buy_above_percentile=0.5, sell_at_or_below_percentile=0.2)
    recs = recommendations(champion, rows_of(market, -2), config=config)
    expected = np.select(
        [recs["percentile"] > 0.5, recs["percentile"] <= 0.2], ["buy", "sell"], default="hold"
    )
    assert recs["action"].tolist() == expected.tolist()
    assert recs["action"].value_counts().to_dict() == {"buy": 15, "hold": 9, "sell": 6}


def test_tied_scores_share_percentile_and_action_and_rank_alphabetically(
    champion: Champion, market: Dataset
) -> None:
    rows = rows_of(market, -1).reset_index(drop=True)
    best = recommendations(champion, rows)["symbol"].iloc[0]
    twin = rows.loc[rows["symbol"] == best].assign(symbol="A_TWIN")
    recs = recommendations(champion, pd.concat([rows, twin], ignore_index=True))
    assert recs["symbol"].iloc[:2].tolist() == ["A_TWIN", best]
    assert recs["rank"].iloc[:2].tolist() == [1, 2]
    assert recs["percentile"].iloc[:2].tolist() == [1.0, 1.0]
    assert recs["action"].iloc[:2].tolist() == ["buy", "buy"]


def test_filed_under_a_later_date(champion: Champion, market: Dataset) -> None:
    rows = rows_of(market, -2)
    later = market.dates[-1].date()
    recs = recommendations(champion, rows, recommendation_date=later)
    assert (recs["date"] == later).all() and (recs["data_date"] == market.dates[-2].date()).all()
    with pytest.raises(ValueError, match="is before the data date"):
        recommendations(champion, rows_of(market, -1), recommendation_date=market.dates[-2].date())


def test_calibration_on_a_constructed_case() -> None:
    # Two dates of four symbols: percentiles 0.25, 0.5, 0.75, 1 in two bins (<= 0.5, above).
    predictions = pd.DataFrame(
        {
            "date": ["2024-01-02"] * 4 + ["2024-01-03"] * 4,
            "prediction": [1, 2, 3, 4, 10, 20, 30, 40],
            "target": [-0.02, 0.01, -0.02, 0.04, 0.01, -0.01, 0.02, 0.01],
        }
    )
    calibration = fit_calibration(predictions, bins=2)
    assert calibration.percentiles == (0.375, 0.875)
    # Bin means -0.0025 and 0.0125, already increasing; 2 of 4 and 3 of 4 returns positive.
    assert calibration.mean_excess_returns == pytest.approx((-0.0025, 0.0125))
    assert calibration.positive_shares == (0.5, 0.75)
    # Flat beyond the outer bins, linear between them.
    percentiles = np.array([0.1, 0.625, 1.0])
    np.testing.assert_allclose(calibration.expected_excess_return(percentiles), [-0.0025, 0.005, 0.0125])
    np.testing.assert_allclose(calibration.confidence(percentiles), [0.5, 0.625, 0.75])


def test_calibration_pools_a_decreasing_pair_and_flips_confidence_below_zero() -> None:
    predictions = pd.DataFrame(
        {
            "date": ["2024-01-02"] * 4 + ["2024-01-03"] * 4,
            "prediction": [1, 2, 3, 4, 1, 2, 3, 4],
            "target": [-0.01, -0.03, -0.02, -0.02, -0.01, -0.03, 0.01, 0.02],
        }
    )
    calibration = fit_calibration(predictions, bins=2)
    # Bin means -0.02 and -0.0025, in order.
    assert calibration.mean_excess_returns == pytest.approx((-0.02, -0.0025))
    # Negative expectations: the confidence is the share of negative returns.
    np.testing.assert_allclose(calibration.confidence(np.array([0.375, 0.875])), [1.0, 0.5])
    # Negated, the means 0.02 and 0.0025 decrease: they pool into their weighted mean.
    unordered = fit_calibration(predictions.assign(target=-predictions["target"]), bins=2)
    assert unordered.mean_excess_returns == pytest.approx((0.01125, 0.01125))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda rows: rows.iloc[0:0], "no feature rows"),
        (lambda rows: pd.concat([rows, rows.iloc[:1]]), "repeat symbol"),
        (lambda rows: rows.drop(columns="feature_3"), "lack the model's feature"),
        (lambda rows: rows.drop(columns="symbol"), "lack column"),
        (
            lambda rows: (
                rows.assign(date=pd.Timestamp("2020-01-01")).iloc[:1].pipe(lambda one: pd.concat([rows, one]))
            ),
            "must be of one date",
        ),
    ],
)
def test_bad_feature_rows_are_named(champion: Champion, market: Dataset, change, message) -> None:
    with pytest.raises(ValueError, match=message):
        recommendations(champion, change(rows_of(market, -1)))


def test_bad_predictions_and_thresholds_are_named() -> None:
    with pytest.raises(ValueError, match="lack column"):
        fit_calibration(pd.DataFrame({"date": [], "prediction": []}))
    with pytest.raises(ValueError, match="too few to calibrate"):
        fit_calibration(pd.DataFrame({"date": ["2024-01-02"] * 3, "prediction": [1, 2, 3], "target": 0.1}))
    with pytest.raises(ValueError, match="is above buy_above_percentile"):
        RecommendationConfig(buy_above_percentile=0.2, sell_at_or_below_percentile=0.3)
    with pytest.raises(ValueError, match="between 0 and 1"):
        RecommendationConfig(buy_above_percentile=1.5)
    with pytest.raises(ValueError, match="top_contributions"):
        RecommendationConfig(top_contributions=0)


def test_config_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCKYARD_PRODUCTS_BUY_ABOVE_PERCENTILE", "0.8")
    monkeypatch.setenv("STOCKYARD_PRODUCTS_TOP_CONTRIBUTIONS", "3")
    get_product_settings.cache_clear()
    try:
        assert RecommendationConfig.from_settings() == RecommendationConfig(
            buy_above_percentile=0.8, sell_at_or_below_percentile=0.1, top_contributions=3
        )
    finally:
        get_product_settings.cache_clear()
    monkeypatch.setenv("STOCKYARD_PRODUCTS_SELL_AT_OR_BELOW_PERCENTILE", "0.85")
    with pytest.raises(ValueError, match="SELL_AT_OR_BELOW_PERCENTILE"):
        ProductSettings()


def test_no_champion_is_a_lookup_error(champion: Champion, tracking) -> None:
    with pytest.raises(LookupError, match="stockyard-nothing has no champion"):
        load_champion(configure_tracking(tracking), "stockyard-nothing")
