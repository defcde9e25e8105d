"""The day's recommendations re-ranked for one user: the symbols of the user's watchlists first (by rank),
then the rest diversified by sector against what the user holds, each with the reason for its place.

The rest is picked greedily: at each step the candidate with the best percentile less DIVERSIFICATION times
the share its sector has of the user's holdings and of the picks so far, so a sector the user is heavy in
(or that the list already has) gives way to the next best of another. 'sell' recommendations are shown only
for watched symbols: they are not suggestions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from serving.schemas import Recommendation
from serving.watch_schemas import PersonalRecommendation

DIVERSIFICATION = 0.5
# Candidates beyond this many times the limit (by rank) cannot win a place against the penalty's range.
CANDIDATES_PER_PLACE = 5
UNKNOWN_SECTOR = "Unknown"


def sector_exposure(holdings: dict[str, tuple[str, float]]) -> dict[str, float]:
    """Sector -> its share of the holdings' value (empty with no holdings)."""
    total = sum(value for _, value in holdings.values())
    if total <= 0:
        return {}
    shares: dict[str, float] = {}
    for sector, value in holdings.values():
        shares[sector] = shares.get(sector, 0.0) + value / total
    return dict(sorted(shares.items(), key=lambda item: -item[1]))


def personalize(
    day_recommendations: Sequence[Recommendation],
    *,
    watched: dict[str, list[str]],
    holdings: dict[str, tuple[str, float]],
    limit: int,
) -> list[PersonalRecommendation]:
    total = len(day_recommendations)
    exposure = sector_exposure(holdings)

    def placed(item: Recommendation, reason: str) -> PersonalRecommendation:
        return PersonalRecommendation(
            **item.model_dump(),
            on_watchlist=item.symbol in watched,
            held=item.symbol in holdings,
            reason=reason,
        )

    chosen = [
        placed(
            item,
            f"on your watchlist{'s' if len(watched[item.symbol]) > 1 else ''} "
            f"{', '.join(repr(name) for name in watched[item.symbol])}: rank {item.rank} of {total}, "
            f"{item.action.value}",
        )
        for item in day_recommendations
        if item.symbol in watched
    ][:limit]
    pool = [
        item for item in day_recommendations if item.symbol not in watched and item.action.value != "sell"
    ]
    pool = pool[: CANDIDATES_PER_PLACE * limit]
    picked: Counter[str] = Counter()
    while len(chosen) < limit and pool:

        def penalty(item: Recommendation) -> float:
            sector = item.sector or UNKNOWN_SECTOR
            return exposure.get(sector, 0.0) + (picked[sector] / sum(picked.values()) if picked else 0.0)

        best = max(pool, key=lambda item: (item.percentile - DIVERSIFICATION * penalty(item), -item.rank))
        pool.remove(best)
        sector = best.sector or UNKNOWN_SECTOR
        held = exposure.get(sector, 0.0)
        why = [f"rank {best.rank} of {total}, {best.action.value}"]
        why.append(
            f"{sector} is {held:.0%} of your holdings" if exposure else "no holdings to diversify against"
        )
        if picked[sector]:
            why.append(f"{picked[sector]} of {sector} above it")
        if best.symbol in holdings:
            why.append("you hold it")
        chosen.append(placed(best, "; ".join(why)))
        picked[sector] += 1
    return chosen
