"""Request and response models of watchlists, personalized recommendations, screens, alerts and their hits.

As with the accounts (serving.account_schemas), request models list what a client may set and nothing else:
an owner's id or a timestamp in a body is ignored. A screen's conditions are stockyard.screens' models, so a
condition the API accepts is one the evaluation can run.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from serving.account_schemas import Name, Symbol
from serving.schemas import Recommendation
from stockyard.screens import Condition

MAX_WATCHLIST_SYMBOLS = 200

# --- watchlists ---------------------------------------------------------------------------------------------


class WatchlistCreate(BaseModel):
    name: Name
    symbols: list[Symbol] = Field(default_factory=list, max_length=MAX_WATCHLIST_SYMBOLS)


class WatchlistRename(BaseModel):
    name: Name


class WatchlistPublic(BaseModel):
    watchlist_id: int
    name: str
    symbols: list[str] = Field(description="In the order they were added.")
    created_at: dt.datetime


class PersonalRecommendation(Recommendation):
    model_config = ConfigDict(protected_namespaces=())

    on_watchlist: bool
    held: bool = Field(description="In one of your portfolios.")
    reason: str = Field(description="Why it is here, and here in the list.")


class PersonalRecommendations(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    date: dt.date | None = Field(description="The recommendations' date; null before any were made.")
    sector_exposure: dict[str, float] = Field(
        description="Your holdings' share per sector at the latest close, the diversification's reference."
    )
    items: list[PersonalRecommendation]


# --- screens ------------------------------------------------------------------------------------------------

CONDITIONS_EXAMPLE = [
    {"field": "rsi_14", "op": "<", "value": 30},
    {"field": "sector", "op": "=", "value": "Information Technology"},
    {"field": "action", "op": "=", "value": "buy"},
]
Conditions = Annotated[
    list[Condition],
    Field(min_length=1, max_length=20, examples=[CONDITIONS_EXAMPLE], description="All must be met."),
]


class ScreenCreate(BaseModel):
    name: Name
    conditions: Conditions
    is_active: bool = Field(default=True, description="Evaluated after each data refresh, hits pushed.")


class ScreenUpdate(BaseModel):
    name: Name | None = None
    conditions: Conditions | None = None
    is_active: bool | None = None


class ScreenPublic(BaseModel):
    screen_id: int
    name: str
    conditions: list[Condition]
    is_active: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class ScreenMatches(BaseModel):
    date: dt.date | None = Field(description="The data date the screen ran on; null before any data.")
    total: int = Field(description="How many symbols match (more than listed when past the limit).")
    matches: list[dict[str, Any]] = Field(
        description="Per symbol: `symbol` and the value of each field the conditions name."
    )


class ScreenFields(BaseModel):
    number: list[str] = Field(description="Fields compared with <, <=, >, >=, =, !=.")
    text: list[str] = Field(description="Fields compared with =, != or `in` (a list).")


# --- alerts -------------------------------------------------------------------------------------------------


class AlertKind(StrEnum):
    price_above = "price_above"
    price_below = "price_below"
    enters_top = "enters_top"


class AlertCreate(BaseModel):
    kind: AlertKind = Field(
        description="price_above / price_below: the close crosses `level`; enters_top: the recommendation's "
        "rank enters the top `top_n`."
    )
    symbol: Symbol
    level: Annotated[float, Field(gt=0, le=1e9, allow_inf_nan=False)] | None = None
    top_n: Annotated[int, Field(ge=1, le=10_000)] | None = None
    is_active: bool = True

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if self.kind == AlertKind.enters_top:
            if self.top_n is None or self.level is not None:
                raise ValueError("an enters_top alert takes top_n, and no level")
        elif self.level is None or self.top_n is not None:
            raise ValueError(f"a {self.kind.value} alert takes a level, and no top_n")
        return self


class AlertUpdate(BaseModel):
    is_active: bool


class AlertPublic(BaseModel):
    alert_id: int
    kind: AlertKind
    symbol: str
    level: float | None
    top_n: int | None
    is_active: bool
    created_at: dt.datetime


# --- hits ---------------------------------------------------------------------------------------------------


class HitPublic(BaseModel):
    hit_id: int
    screen_id: int | None
    alert_id: int | None
    data_date: dt.date
    symbol: str
    detail: dict[str, Any] = Field(description="The values that met the screen or set off the alert.")
    created_at: dt.datetime
