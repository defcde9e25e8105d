"""Walk-forward splits: ordered, disjoint, purged by at least the label horizon."""

from __future__ import annotations

import pandas as pd
import pytest

from ml.config import WalkForwardConfig
from ml.splits import final_split, walk_forward_splits

DATES = pd.bdate_range("2020-01-01", periods=700)
CONFIG = WalkForwardConfig(n_folds=4, test_days=50, validation_days=30, min_train_days=100)


def gap(before: pd.DatetimeIndex, after: pd.DatetimeIndex) -> int:
    """Dates strictly between the last of `before` and the first of `after`."""
    return DATES.get_loc(after.min()) - DATES.get_loc(before.max()) - 1


@pytest.mark.parametrize("horizon", [1, 5, 21])
def test_folds_are_ordered_disjoint_and_purged(horizon: int) -> None:
    folds = walk_forward_splits(DATES, CONFIG, horizon)
    assert [fold.index for fold in folds] == [0, 1, 2, 3]
    for fold in folds:
        assert fold.train.is_monotonic_increasing and fold.validation.is_monotonic_increasing
        assert fold.train.max() < fold.validation.min() < fold.validation.max() < fold.test.min()
        assert gap(fold.train, fold.validation) == horizon
        assert gap(fold.validation, fold.test) == horizon
        assert not set(fold.train) & set(fold.test) and not set(fold.validation) & set(fold.test)
        assert len(fold.test) == 50 and len(fold.validation) == 30
        # Expanding window: training starts at the first date.
        assert fold.train.min() == DATES[0]
    # Test folds tile the end of the dates, in order.
    tested = pd.DatetimeIndex(pd.concat([fold.test.to_series() for fold in folds]))
    assert tested.is_monotonic_increasing and tested.is_unique
    assert list(tested) == list(DATES[-200:])


def test_a_training_label_never_reaches_into_its_test_fold() -> None:
    horizon = 5
    for fold in walk_forward_splits(DATES, CONFIG, horizon):
        # The label of the last training date ends `horizon` dates later: before validation and test.
        label_end = DATES[DATES.get_loc(fold.train.max()) + horizon]
        assert label_end < fold.validation.min()
        assert DATES[DATES.get_loc(fold.validation.max()) + horizon] < fold.test.min()


def test_purge_can_be_longer_but_never_shorter_than_the_horizon() -> None:
    longer = WalkForwardConfig(n_folds=2, test_days=50, validation_days=30, min_train_days=100, purge_days=10)
    assert all(gap(fold.validation, fold.test) == 10 for fold in walk_forward_splits(DATES, longer, 5))
    shorter = WalkForwardConfig(n_folds=2, test_days=50, validation_days=30, min_train_days=100, purge_days=3)
    with pytest.raises(ValueError, match="shorter than the label horizon"):
        walk_forward_splits(DATES, shorter, 5)


def test_rolling_window_and_too_little_history() -> None:
    rolling = WalkForwardConfig(
        n_folds=2, test_days=50, validation_days=30, min_train_days=100, max_train_days=150
    )
    assert all(len(fold.train) == 150 for fold in walk_forward_splits(DATES, rolling, 5))
    with pytest.raises(ValueError, match="fewer than min_train_days"):
        walk_forward_splits(DATES[:250], CONFIG, 5)


def test_unsorted_duplicated_dates_are_handled() -> None:
    shuffled = DATES.append(DATES[:100])[::-1]
    pairs = zip(walk_forward_splits(shuffled, CONFIG, 5), walk_forward_splits(DATES, CONFIG, 5), strict=True)
    for got, expected in pairs:
        assert got.train.equals(expected.train) and got.validation.equals(expected.validation)
        assert got.test.equals(expected.test)


def test_final_split_validates_on_the_last_dates() -> None:
    split = final_split(DATES, CONFIG, 5)
    assert split.test.empty
    assert split.validation.max() == DATES[-1] and len(split.validation) == 30
    assert gap(split.train, split.validation) == 5
