"""Champion / challenger: the promotion rule as data, and the decision it gives.

Every new model version becomes the `challenger`. It becomes the `champion` only when its metric beats the
current champion's, measured on the same evaluation window, by more than `min_improvement` (or when there is
no champion yet). The decision, with both values and the reason, is recorded with the run.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ml.config import MLSettings


@dataclass(frozen=True)
class PromotionRule:
    metric: str = "rank_ic"
    min_improvement: float = 0.005
    higher_is_better: bool = True

    @classmethod
    def from_settings(cls, settings: MLSettings) -> PromotionRule:
        return cls(metric=settings.promotion_metric, min_improvement=settings.promotion_min_improvement)


@dataclass(frozen=True)
class PromotionDecision:
    promoted: bool
    reason: str
    rule: PromotionRule
    evaluation_window: str
    challenger_version: str
    challenger_value: float
    champion_version: str | None = None
    champion_value: float | None = None
    # "logged" when the champion's run was evaluated on the same window and data, else "re-evaluated".
    champion_source: str | None = None

    @property
    def alias(self) -> str:
        return "champion" if self.promoted else "challenger"

    def to_dict(self) -> dict[str, object]:
        return asdict(self) | {"alias": self.alias}


def decide(
    rule: PromotionRule,
    *,
    evaluation_window: str,
    challenger_version: str,
    challenger_value: float,
    champion_version: str | None = None,
    champion_value: float | None = None,
    champion_source: str | None = None,
) -> PromotionDecision:
    def decision(promoted: bool, reason: str) -> PromotionDecision:
        return PromotionDecision(
            promoted=promoted,
            reason=reason,
            rule=rule,
            evaluation_window=evaluation_window,
            challenger_version=challenger_version,
            challenger_value=challenger_value,
            champion_version=champion_version,
            champion_value=champion_value,
            champion_source=champion_source,
        )

    name = rule.metric
    if champion_version is None:
        return decision(True, "no champion yet")
    if math.isnan(challenger_value):
        return decision(False, f"the challenger has no {name} on {evaluation_window}")
    if champion_value is None or math.isnan(champion_value):
        return decision(True, f"champion v{champion_version} has no {name} on {evaluation_window}")
    improvement = (
        challenger_value - champion_value if rule.higher_is_better else champion_value - challenger_value
    )
    comparison = (
        f"{name} {challenger_value:.5f} vs champion v{champion_version}'s {champion_value:.5f} on "
        f"{evaluation_window}: improvement {improvement:+.5f}, required more than {rule.min_improvement:.5f}"
    )
    return decision(improvement > rule.min_improvement, comparison)
