"""Daily recommendations from the champion XGBoost model (its seeds' ensemble): per symbol of one date, the
score, its rank and percentile, a calibrated expected excess return with a confidence, a buy / hold / sell
action and the features that moved the score most (XGBoost's own per-prediction contributions, exact
TreeSHAP values, averaged over the seeds).

The rows scored are the dataset's rows of that date, features normalized across the date's symbols as in
training (`load_dataset(conn, DateWindow(day, day))` gives exactly those: normalization uses only the
date's own rows).

Rank 1 is the highest score; ties go to the alphabetically first symbol, as in the backtest, so ranks run
1..n without holes. The percentile is the share of the date's symbols scored at or below the symbol, in
(0, 1] (tied symbols share it, and so share their action): a buy above `buy_above_percentile`, a sell at or
below `sell_at_or_below_percentile`, else a hold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import xgboost as xgb
from mlflow import MlflowClient

from ml.models.ensemble import SeedEnsemble, load_ensemble
from ml.models.xgboost_model import XGBoostModel
from ml.tracking import (
    CHAMPION,
    load_out_of_sample_predictions,
    registered_model_name,
    version_with_alias,
)
from stockyard.product_settings import ProductSettings, get_product_settings
from stockyard.products import RECOMMENDATION_COLUMNS

BIAS = "bias"


@dataclass(frozen=True)
class RecommendationConfig:
    buy_above_percentile: float = 0.9
    sell_at_or_below_percentile: float = 0.1
    # Features kept per recommendation, largest absolute contribution first.
    top_contributions: int = 5

    def __post_init__(self) -> None:
        for name in ("buy_above_percentile", "sell_at_or_below_percentile"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a share between 0 and 1, got {value}")
        if self.sell_at_or_below_percentile > self.buy_above_percentile:
            raise ValueError(
                f"sell_at_or_below_percentile {self.sell_at_or_below_percentile} is above "
                f"buy_above_percentile {self.buy_above_percentile}"
            )
        if self.top_contributions < 1:
            raise ValueError(f"top_contributions must be at least 1, got {self.top_contributions}")

    @classmethod
    def from_settings(cls, settings: ProductSettings | None = None) -> RecommendationConfig:
        settings = settings or get_product_settings()
        return cls(
            buy_above_percentile=settings.buy_above_percentile,
            sell_at_or_below_percentile=settings.sell_at_or_below_percentile,
            top_contributions=settings.top_contributions,
        )


@dataclass(frozen=True)
class ScoreCalibration:
    """What a score percentile has meant out of sample: per percentile bin, the mean realized excess return
    over the dataset's horizon (a fraction: 0.004 is 0.4% over the equal-weight universe) and the share of
    those returns that were positive, from the walk-forward's predictions on dates each fold's model never
    saw.

    Why the percentile and not the raw score: the registered model is fitted anew on all labelled dates
    after the walk-forward, and each fold's model scores on its own scale, so only the order of the scores
    within a date carries over from the folds to the model being used. Bins are fixed shares of each date's
    symbols (deciles by default), so every bin pools many dates and symbols.

    Expected excess return: the bin means made non-decreasing in the percentile (weighted isotonic
    regression, pool-adjacent-violators), interpolated linearly between the bins' mean percentiles and flat
    beyond the outer ones. Monotone so that a better rank never means a lower expected return; with no skill
    out of sample the noise in the bin means is pooled towards a flat line near zero instead of inventing
    structure.

    Confidence: the out-of-sample probability that the realized excess return had the sign of the expected
    one, i.e. the (interpolated) share of positive returns in the bin when the expected return is >= 0,
    else the share of negative ones. 0.5 is a coin flip; it rises towards the extremes only as far as the
    model's walk-forward record supports.
    """

    percentiles: tuple[float, ...]
    mean_excess_returns: tuple[float, ...]
    positive_shares: tuple[float, ...]
    rows: int

    def expected_excess_return(self, percentile: np.ndarray) -> np.ndarray:
        expected: np.ndarray = np.interp(percentile, self.percentiles, self.mean_excess_returns)
        return expected

    def confidence(self, percentile: np.ndarray) -> np.ndarray:
        positive = np.interp(percentile, self.percentiles, self.positive_shares)
        confidence: np.ndarray = np.where(
            self.expected_excess_return(percentile) >= 0, positive, 1.0 - positive
        )
        return confidence


@dataclass(frozen=True)
class Champion:
    """The champion version of the XGBoost model (the ensemble of its seeds' boosters) from the registry,
    with its run's walk-forward out-of-sample predictions (date, symbol, prediction, target, fold: made by
    each fold's models on dates they never saw, the honest scores to backtest) and the calibration fitted
    on them."""

    model: SeedEnsemble[XGBoostModel]
    model_name: str
    version: str
    run_id: str
    out_of_sample: pd.DataFrame
    calibration: ScoreCalibration


def date_percentiles(dates: pd.Series, scores: pd.Series) -> pd.Series:
    """Per row, the share of its date's rows scored at or below it, in (0, 1]."""
    by_date = scores.groupby(dates.to_numpy())
    percentiles: pd.Series = by_date.rank(method="max") / by_date.transform("size")
    return percentiles


def fit_calibration(predictions: pd.DataFrame, *, bins: int = 10) -> ScoreCalibration:
    """The calibration of out-of-sample `predictions` (columns date, prediction, target: the walk-forward's
    scores and realized excess returns, as in the run's oos_predictions.parquet); see ScoreCalibration."""
    missing = [name for name in ("date", "prediction", "target") if name not in predictions.columns]
    if missing:
        raise ValueError(f"predictions lack column(s) {', '.join(missing)} (need date, prediction, target)")
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    scored = predictions.loc[
        np.isfinite(predictions["prediction"].to_numpy(np.float64))
        & np.isfinite(predictions["target"].to_numpy(np.float64)),
        ["date", "prediction", "target"],
    ]
    if len(scored) < 2 * bins:
        raise ValueError(
            f"{len(scored)} out-of-sample predictions with a target are too few to calibrate {bins} bins"
        )
    percentile = date_percentiles(scored["date"], scored["prediction"])
    binned = pd.DataFrame(
        {
            "bin": np.minimum(np.ceil(percentile.to_numpy() * bins) - 1, bins - 1).astype(int),
            "percentile": percentile.to_numpy(),
            "target": scored["target"].to_numpy(np.float64),
            "positive": scored["target"].to_numpy(np.float64) > 0,
        }
    )
    per_bin = binned.groupby("bin").agg(
        percentile=("percentile", "mean"),
        mean=("target", "mean"),
        positive=("positive", "mean"),
        rows=("target", "size"),
    )
    return ScoreCalibration(
        percentiles=tuple(per_bin["percentile"].tolist()),
        mean_excess_returns=tuple(
            _non_decreasing(per_bin["mean"].to_numpy(), per_bin["rows"].to_numpy(np.float64)).tolist()
        ),
        positive_shares=tuple(per_bin["positive"].tolist()),
        rows=len(scored),
    )


def feature_contributions(model: SeedEnsemble[XGBoostModel], rows: pd.DataFrame) -> pd.DataFrame:
    """Per row, each feature's contribution and the `bias` (the prediction with no feature known), from
    XGBoost's `pred_contribs`, averaged over the seeds' boosters: a row's contributions and bias sum to the
    mean of the seeds' raw predictions. The ensemble's score is a mean of per-date ranks, which no additive
    attribution reproduces, so the seeds' mean contribution is its explanation (with one seed, exact)."""
    features = _model_features(model, rows)
    matrix = xgb.DMatrix(rows[features], feature_names=features)
    contributions = np.mean(
        [member.booster.predict(matrix, pred_contribs=True) for member in model.members.values()], axis=0
    )
    return pd.DataFrame(contributions, index=rows.index, columns=[*features, BIAS], dtype=np.float64)


def recommend(
    model: SeedEnsemble[XGBoostModel],
    rows: pd.DataFrame,
    calibration: ScoreCalibration,
    *,
    model_name: str,
    model_version: str,
    config: RecommendationConfig | None = None,
    recommendation_date: date | None = None,
) -> pd.DataFrame:
    """The recommendations of one date's feature `rows` (columns date, symbol and the model's features, one
    row per symbol), best first, with the columns of products.recommendations but data_source:
    RECOMMENDATION_COLUMNS. `top_contributions` holds lists of {"feature", "value", "contribution"}, where
    value is the normalized feature value the model saw (None when missing). `recommendation_date` (default:
    the data date) is the date the rows are filed under."""
    config = config or RecommendationConfig()
    data_date = _single_date(rows)
    if recommendation_date is not None and recommendation_date < data_date:
        raise ValueError(f"recommendation date {recommendation_date} is before the data date {data_date}")
    duplicated = rows["symbol"].duplicated()
    if duplicated.any():
        repeated = sorted(rows.loc[duplicated, "symbol"].astype(str).unique())
        raise ValueError(f"feature rows of {data_date} repeat symbol(s) {', '.join(repeated[:5])}")

    contributions = feature_contributions(model, rows)
    scores = pd.Series(model.predict_frame(rows), index=rows.index)
    if not np.isfinite(scores.to_numpy()).all():
        raise ValueError(f"the model gave non-finite scores on {data_date}")
    frame = pd.DataFrame({"symbol": rows["symbol"].astype(str), "score": scores})
    percentile = date_percentiles(rows["date"], scores).to_numpy()
    action = np.where(
        percentile > config.buy_above_percentile,
        "buy",
        np.where(percentile <= config.sell_at_or_below_percentile, "sell", "hold"),
    )
    frame = frame.assign(
        percentile=percentile,
        expected_excess_return=calibration.expected_excess_return(percentile),
        confidence=calibration.confidence(percentile),
        action=action,
        top_contributions=pd.Series(
            _top_contributions(contributions, rows, config.top_contributions), index=rows.index, dtype=object
        ),
        model_name=model_name,
        model_version=model_version,
        data_date=data_date,
        date=recommendation_date or data_date,
    )
    frame = frame.sort_values(["score", "symbol"], ascending=[False, True], ignore_index=True)
    frame["rank"] = np.arange(1, len(frame) + 1)
    return frame.loc[:, list(RECOMMENDATION_COLUMNS)]


def load_champion(client: MlflowClient, model_name: str | None = None) -> Champion:
    """The version of `model_name` (default stockyard-xgboost) with the champion alias, its seeds' boosters,
    out-of-sample predictions and calibration. `client` and MLflow's tracking URI must point at the same
    store: ml.tracking's configure_tracking does both."""
    model_name = model_name or registered_model_name(XGBoostModel.family)
    version = version_with_alias(client, model_name, CHAMPION)
    if version is None or version.run_id is None:
        raise LookupError(f"{model_name} has no {CHAMPION} version yet: train a model first")
    out_of_sample = load_out_of_sample_predictions(version.run_id)
    return Champion(
        model=load_ensemble(f"models:/{model_name}/{version.version}", XGBoostModel),
        model_name=model_name,
        version=str(version.version),
        run_id=version.run_id,
        out_of_sample=out_of_sample,
        calibration=fit_calibration(out_of_sample),
    )


def _single_date(rows: pd.DataFrame) -> date:
    missing = [name for name in ("date", "symbol") if name not in rows.columns]
    if missing:
        raise ValueError(f"feature rows lack column(s) {', '.join(missing)}")
    if rows.empty:
        raise ValueError("no feature rows to recommend on")
    dates = pd.DatetimeIndex(pd.to_datetime(rows["date"]).unique()).sort_values()
    if len(dates) != 1:
        shown = ", ".join(str(day.date()) for day in dates[:5])
        raise ValueError(f"feature rows must be of one date, got {len(dates)}: {shown}")
    result: date = dates[0].date()
    return result


def _model_features(model: SeedEnsemble[XGBoostModel], rows: pd.DataFrame) -> list[str]:
    features = next(iter(model.members.values())).features
    if not features:
        raise ValueError("the model has no feature names: it was not trained on a named frame")
    missing = [name for name in features if name not in rows.columns]
    if missing:
        raise ValueError(f"feature rows lack the model's feature(s) {', '.join(missing[:10])}")
    return features


def _top_contributions(
    contributions: pd.DataFrame, rows: pd.DataFrame, count: int
) -> list[list[dict[str, float | str | None]]]:
    """Per row, the `count` largest absolute contributions (ties by feature name), with the input value."""
    features = [name for name in contributions.columns if name != BIAS]
    values = contributions[features].to_numpy()
    inputs = rows[features].to_numpy(np.float64)
    # lexsort's last key is the primary one: largest |contribution| first, then the feature's name.
    name_order = np.argsort(np.argsort(np.array(features)))
    top = []
    for row, row_inputs in zip(values, inputs, strict=True):
        order = np.lexsort((name_order, -np.abs(row)))[:count]
        top.append(
            [
                {
                    "feature": features[column],
                    "value": None if math.isnan(row_inputs[column]) else float(row_inputs[column]),
                    "contribution": float(row[column]),
                }
                for column in order
            ]
        )
    return top


def _non_decreasing(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The weighted least-squares non-decreasing fit of `values` (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [mean, weight, length]
    for value, weight in zip(values, weights, strict=True):
        blocks.append([float(value), float(weight), 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean, weight_sum, length = blocks.pop()
            previous = blocks[-1]
            total = previous[1] + weight_sum
            blocks[-1] = [
                (previous[0] * previous[1] + mean * weight_sum) / total,
                total,
                previous[2] + length,
            ]
    return np.concatenate([np.full(int(length), mean) for mean, _, length in blocks])
