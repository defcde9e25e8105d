"""Walk-forward splits over trading dates, purged so that no training label overlaps what it is tested on.

A label on date t is the return from t to t + horizon, so a training date closer than `horizon` dates to the
first test date would know part of the test period's prices. Each fold is laid out as

    [ train ] purge [ validation ] purge [ test ]

with purge >= horizon dates dropped at each gap. Validation (for early stopping) is carved from the end of
the training window, never from the test fold. The window only expands forward, so no training date comes
after a test date and no embargo after the test fold is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from ml.config import WalkForwardConfig


@dataclass(frozen=True)
class Fold:
    index: int
    train: pd.DatetimeIndex
    validation: pd.DatetimeIndex
    test: pd.DatetimeIndex


def walk_forward_splits(dates: pd.DatetimeIndex, config: WalkForwardConfig, horizon: int) -> list[Fold]:
    """`config.n_folds` consecutive test blocks of `config.test_days` at the end of `dates`, oldest first."""
    dates = _sorted_unique(dates)
    purge = config.purge(horizon)
    first_test = len(dates) - config.n_folds * config.test_days
    folds = []
    for index in range(config.n_folds):
        test_start = first_test + index * config.test_days
        train, validation = _train_and_validation(dates, test_start - purge, config, purge)
        folds.append(
            Fold(
                index=index,
                train=train,
                validation=validation,
                test=dates[test_start : test_start + config.test_days],
            )
        )
    return folds


def final_split(dates: pd.DatetimeIndex, config: WalkForwardConfig, horizon: int) -> Fold:
    """The split of the model fitted on everything: validation from the last dates, no test."""
    dates = _sorted_unique(dates)
    train, validation = _train_and_validation(dates, len(dates), config, config.purge(horizon))
    return Fold(index=-1, train=train, validation=validation, test=dates[:0])


def _train_and_validation(
    dates: pd.DatetimeIndex, end: int, config: WalkForwardConfig, purge: int
) -> tuple[pd.DatetimeIndex, pd.DatetimeIndex]:
    """Validation ends right before position `end`; training ends `purge` dates before validation starts."""
    validation_start = end - config.validation_days
    train_end = validation_start - purge
    train_start = 0 if config.max_train_days is None else max(0, train_end - config.max_train_days)
    if train_end - train_start < config.min_train_days:
        raise ValueError(
            f"{len(dates)} labelled dates leave {max(train_end - train_start, 0)} training dates for a fold, "
            f"fewer than min_train_days={config.min_train_days}: use fewer or shorter folds or more history"
        )
    return dates[train_start:train_end], dates[validation_start:end]


def _sorted_unique(dates: pd.DatetimeIndex) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(dates).unique().sort_values()


def yearly_splits(
    dates: pd.DatetimeIndex,
    years: Sequence[int],
    *,
    horizon: int,
    validation_days: int,
    min_train_days: int,
    max_train_days: int | None = None,
) -> list[Fold]:
    """One fold per calendar year in `years`: the year's dates are the test block; validation is the
    `validation_days` dates ending a purge (the horizon) before the year starts, and training every date
    before that (or the last `max_train_days` of them), a purge earlier again."""
    dates = _sorted_unique(dates)
    config = WalkForwardConfig(
        n_folds=1,
        test_days=1,
        validation_days=validation_days,
        min_train_days=min_train_days,
        max_train_days=max_train_days,
    )
    purge = config.purge(horizon)
    folds = []
    for index, year in enumerate(sorted(years)):
        test = dates[dates.year == year]
        if test.empty:
            raise ValueError(f"no labelled dates in test year {year} (the data has {_year_span(dates)})")
        start = int(dates.searchsorted(test[0]))
        try:
            train, validation = _train_and_validation(dates, start - purge, config, purge)
        except ValueError as error:
            raise ValueError(f"test year {year}: {error}") from error
        folds.append(Fold(index=index, train=train, validation=validation, test=test))
    return folds


def _year_span(dates: pd.DatetimeIndex) -> str:
    return f"{dates[0].year}..{dates[-1].year}" if len(dates) else "no dates"
