"""What a quality check found, in plain data: no Great Expectations here, so Dagster can import it cheaply."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path

import pandas as pd

from stockyard.rules import DUPLICATE_IDENTICAL


class Severity(StrEnum):
    """ERROR stops what is downstream (a blocking check); WARN is shown but lets it run."""

    ERROR = "ERROR"
    WARN = "WARN"


@dataclass(frozen=True)
class Window:
    """Trading days first..last inclusive, and the partition key rows without a date were recorded under."""

    first: date
    last: date
    partition_key: str

    @classmethod
    def of(cls, first: date, last: date) -> Window:
        """The window of a run over partitions first..last, keyed as orchestration.partitions names it."""
        key = first.isoformat() if first == last else f"{first}...{last}"
        return cls(first, last, key)

    def __str__(self) -> str:
        return f"{self.first}..{self.last}"


@dataclass(frozen=True)
class Finding:
    """How one rule fared: the rows failing it (0 when it passed) and a sample of them."""

    rule: str
    description: str
    severity: Severity
    failing: int
    sample: pd.DataFrame
    # Set when GE could not evaluate the expectation at all (e.g. a missing column): that fails the rule.
    error: str | None = None


@dataclass(frozen=True)
class Quarantine:
    """What the loader set aside for a window of a raw dataset, against what it loaded.

    The share counts the rows lost: an identical copy of a loaded row is recorded, but its data is loaded.
    """

    dataset: str
    loaded: int
    quarantined: int
    by_rule: dict[str, int]
    sample: pd.DataFrame
    max_share: float

    @property
    def lost(self) -> int:
        return self.quarantined - self.by_rule.get(DUPLICATE_IDENTICAL, 0)

    @property
    def share(self) -> float:
        total = self.loaded + self.lost
        return self.lost / total if total else 0.0

    @property
    def within_threshold(self) -> bool:
        return self.share <= self.max_share


@dataclass
class QualityResult:
    """One check's outcome: passed or not, at which severity, and the evidence for a data engineer."""

    name: str
    severity: Severity
    rows: int
    findings: list[Finding]
    results_path: Path | None = None
    window: Window | None = None
    quarantine: Quarantine | None = None
    metrics: Mapping[str, int | float | str | Mapping[str, int]] = field(default_factory=dict)
    # Rows that stand out but that the rules allow (e.g. features undefined by rule): shown, never failing.
    reported: list[Finding] = field(default_factory=list)
    #: What the rule counts do not say, in a sentence (e.g. why symbols were not served).
    detail: str = ""

    @property
    def failing_rules(self) -> dict[str, int]:
        return {finding.rule: finding.failing for finding in self.findings if finding.failing}

    @property
    def reported_rules(self) -> dict[str, int]:
        return {finding.rule: finding.failing for finding in self.reported if finding.failing}

    @property
    def passed(self) -> bool:
        return not self.failing_rules and (self.quarantine is None or self.quarantine.within_threshold)


def markdown_table(frame: pd.DataFrame) -> str:
    """A small DataFrame as a Markdown table (what the Dagster UI renders for `MetadataValue.md`)."""
    if frame.empty:
        return "_none_"
    header = "| " + " | ".join(str(column) for column in frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(_cell(value) for value in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def _cell(value: object) -> str:
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        # Volumes travel as floats beside missing bars: show whole numbers whole.
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.6g}"
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat() if value == value.normalize() else value.isoformat(sep=" ")
    if isinstance(value, dict | list):
        value = json.dumps(value, default=str)
    return str(value).replace("|", "\\|").replace("\n", " ")
