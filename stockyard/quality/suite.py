"""Running a Great Expectations suite on a DataFrame and reading the outcome back rule by rule.

Every expectation carries the name of the rule it enforces (in its `meta`), so each result maps back to a
rule: how many rows fail it and a few of them. The full GE validation result is written as JSON beside the
check's other results, for the data engineer to open from the check's metadata.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import great_expectations as gx
import numpy as np
import pandas as pd
from great_expectations.core import ExpectationSuiteValidationResult, ExpectationValidationResult
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from great_expectations.expectations.expectation import Expectation
from great_expectations.expectations.metadata_types import FailureSeverity

from stockyard.quality.results import Finding, Severity, Window

# Failing rows kept per rule as a sample (in the check metadata and the GE results).
SAMPLE_ROWS = 5

_GE_SEVERITY = {Severity.ERROR: FailureSeverity.CRITICAL, Severity.WARN: FailureSeverity.WARNING}


@dataclass(frozen=True)
class Rule:
    """One expectation, named with the rule vocabulary; `subject` tells rules of the same name apart (the
    feature a range rule applies to), `shows` are the columns a sample of failing rows adds.

    `reads` names the columns the expectation reads, when it reads few of a wide frame: GE copies the whole
    batch for each expectation, so such rules are validated on those columns alone (with the id columns).
    """

    name: str
    description: str
    expectation: Expectation
    subject: str | None = None
    shows: tuple[str, ...] = ()
    reads: tuple[str, ...] | None = None

    @property
    def key(self) -> str:
        return self.name if self.subject is None else f"{self.name}[{self.subject}]"


def run_suite(
    name: str,
    frame: pd.DataFrame,
    rules: Sequence[Rule],
    *,
    severity: Severity,
    id_columns: Sequence[str],
    sample_columns: Sequence[str],
    results_dir: Path,
    window: Window | None = None,
) -> tuple[list[Finding], Path]:
    """Validate `frame` against `rules` as GE suite `name`; the findings, and where the results were saved.

    GE names failing rows by their `id_columns` (e.g. symbol and date), in the results and in the samples.
    """
    ids = _ids(frame, id_columns)
    batches: dict[tuple[str, ...] | None, list[Rule]] = {}
    for rule in rules:
        batches.setdefault(rule.reads, []).append(rule)
    validations = []
    for reads, batch_rules in batches.items():
        columns = (
            frame.columns.drop(id_columns) if reads is None else pd.Index(reads).drop(id_columns, "ignore")
        )
        suite = gx.ExpectationSuite(
            name=name, expectations=[_expectation(rule, severity) for rule in batch_rules]
        )
        batch = pd.concat([ids, frame[columns]], axis=1)
        validations.append(_validate(suite, batch, id_columns))
    by_rule = {
        result.expectation_config.meta["rule"]: result
        for validation in validations
        for result in validation.results
        if result.expectation_config is not None
    }
    findings = [
        _finding(rule, by_rule[rule.key], frame, ids, severity, [*sample_columns, *rule.shows])
        for rule in rules
    ]
    results = {
        "suite_name": name,
        "success": all(validation.success for validation in validations),
        # One GE validation result per batch of columns (one in all for a narrow frame).
        "validations": [
            validation.to_json_dict()  # type: ignore[no-untyped-call]  # GE leaves it unannotated
            for validation in validations
        ],
    }
    return findings, _save(results, results_dir / name, window)


def _ids(frame: pd.DataFrame, id_columns: Sequence[str]) -> pd.DataFrame:
    """The id columns as categoricals (GE hashes and copies them with every batch: codes are cheaper than
    strings); dates as YYYY-MM-DD (in the results and the samples), formatted once per distinct day."""
    ids = {}
    for column in id_columns:
        values = frame[column].astype("category")
        if isinstance(days := values.cat.categories, pd.DatetimeIndex):
            values = values.cat.rename_categories(list(days.strftime("%Y-%m-%d")))
        ids[column] = values
    return pd.DataFrame(ids, index=frame.index)


def _validate(
    suite: gx.ExpectationSuite, batch: pd.DataFrame, id_columns: Sequence[str]
) -> ExpectationSuiteValidationResult:
    """Validate one batch in a context of its own: a context keeps every batch it loaded until it goes."""
    context = gx.get_context(
        mode="ephemeral",
        # No usage statistics (nothing leaves the machine) and no progress bars in the run logs.
        project_config=DataContextConfig(
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False),
            store_backend_defaults=InMemoryStoreBackendDefaults(),
        ),
    )
    batch_definition = (
        context.data_sources.add_pandas(name="warehouse")
        .add_dataframe_asset(name=suite.name)
        .add_batch_definition_whole_dataframe("window")
    )
    return batch_definition.get_batch(batch_parameters={"dataframe": batch}).validate(
        suite,
        result_format={
            "result_format": "SUMMARY",
            "partial_unexpected_count": SAMPLE_ROWS,
            "unexpected_index_column_names": list(id_columns),
        },
    )


def _expectation(rule: Rule, severity: Severity) -> Expectation:
    """The rule's expectation, tagged with the rule (to read its result back), its meaning and severity."""
    return rule.expectation.copy(
        update={
            "meta": {"rule": rule.key},
            "description": rule.description,
            "severity": _GE_SEVERITY[severity],
        }
    )


def _finding(
    rule: Rule,
    result: ExpectationValidationResult,
    frame: pd.DataFrame,
    ids: pd.DataFrame,
    severity: Severity,
    columns: Sequence[str],
) -> Finding:
    shown = [column for column in dict.fromkeys(columns) if column in frame.columns.drop(ids.columns)]
    if result.success:
        return Finding(rule.key, rule.description, severity, 0, _rows(frame, ids, shown, []))
    details: Mapping[str, Any] = result.result
    found = pd.DataFrame(details.get("partial_unexpected_index_list") or [], columns=ids.columns)
    sample = _rows(frame, ids, shown, _positions(ids, found))
    error = _exception_message(result.exception_info)
    # Table-level expectations (a column exists) have no row count: count the failure once.
    failing = int(details.get("unexpected_count") or 1)
    return Finding(rule.key, rule.description, severity, failing, sample, error)


def _positions(ids: pd.DataFrame, found: pd.DataFrame) -> list[int]:
    """Where the rows with the ids GE found are, in frame order. Duplicated rows share their ids: each id
    finds every copy."""
    # Rows holding each of the ids' values, a few, narrow the lookup before the ids are matched as a whole.
    candidates = np.flatnonzero(
        np.logical_and.reduce([ids[column].isin(found[column]).to_numpy() for column in ids.columns])
    )
    matched = (
        ids.iloc[candidates].assign(position=candidates).merge(found.drop_duplicates(), on=list(ids.columns))
    )
    return sorted(int(position) for position in matched["position"])


def _rows(frame: pd.DataFrame, ids: pd.DataFrame, shown: list[str], positions: list[int]) -> pd.DataFrame:
    """The rows at `positions`: their ids as GE names them (in the ids' own type again), then `shown`."""
    rows = pd.concat([ids.iloc[positions], frame.iloc[positions][shown]], axis="columns")
    types = {column: ids[column].cat.categories.dtype for column in ids.columns}
    return rows.astype(types).reset_index(drop=True)


def _exception_message(info: Mapping[str, Any] | None) -> str | None:
    """GE reports an expectation that raised either flat or keyed by the metric that raised."""
    if not info:
        return None
    entries = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, Mapping)]
    messages = [str(entry.get("exception_message")) for entry in entries if entry.get("raised_exception")]
    return "; ".join(messages) or None


def _save(results: Mapping[str, Any], folder: Path, window: Window | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    label = f"{window.first}_{window.last}" if window else "all"
    path = folder / f"{label}_{stamp}.json"
    path.write_text(json.dumps(results, indent=2, default=str, allow_nan=True))
    return path
