"""Dagster definitions of Stockyard: assets, checks, resources and partitions (see definitions.py)."""

import warnings

import dagster as dg

# Single-run backfills (BackfillPolicy) are how the partitioned assets take a window in one run; Dagster marks
# the parameter beta and would warn once per asset in every process that loads the definitions.
warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)
