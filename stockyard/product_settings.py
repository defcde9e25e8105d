"""The products section of the settings (STOCKYARD_PRODUCTS_*): the recommendation actions and
explanations, the backtest's strategy and the signal-health alarm. `.env.example` lists them."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from stockyard.settings import Share, StockyardSettings


class ProductSettings(StockyardSettings):
    model_config = SettingsConfigDict(env_prefix="STOCKYARD_PRODUCTS_")

    buy_above_percentile: Share = Field(
        default=0.9, description="A symbol whose score percentile is above this is a buy."
    )
    sell_at_or_below_percentile: Share = Field(
        default=0.1, description="A symbol whose score percentile is at or below this is a sell."
    )
    top_contributions: int = Field(
        default=5, ge=1, description="Features kept per recommendation, largest absolute contribution first."
    )
    backtest_top_k: int = Field(default=10, ge=1, description="Symbols the backtest strategy holds.")
    backtest_rebalance_days: int = Field(default=5, ge=1, description="Trading days between rebalances.")
    backtest_cost_bps: float = Field(default=10.0, ge=0.0, description="Costs per unit of turnover, in bp.")
    signal_health_window: int = Field(
        default=20, ge=1, description="Realized dates the rolling rank IC averages over."
    )
    signal_health_ic_floor: float = Field(
        default=0.0,
        description="The signal-health check warns when the rolling realized rank IC is below this.",
    )

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> ProductSettings:
        if self.sell_at_or_below_percentile > self.buy_above_percentile:
            raise ValueError(
                "STOCKYARD_PRODUCTS_SELL_AT_OR_BELOW_PERCENTILE "
                f"({self.sell_at_or_below_percentile}) is above STOCKYARD_PRODUCTS_BUY_ABOVE_PERCENTILE "
                f"({self.buy_above_percentile})"
            )
        return self


@lru_cache
def get_product_settings() -> ProductSettings:
    return ProductSettings()
