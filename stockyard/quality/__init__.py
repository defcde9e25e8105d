"""Data quality: Great Expectations suites over the warehouse, run by Dagster asset checks (no Dagster here).

The suites name their rules with the loader's quarantine vocabulary (`raw.quarantined_rows.rule`), so a data
engineer reads one set of names in the quarantine table, in the check results and in the GE results.
Great Expectations takes seconds to import: import the suite modules where they run, not at load time.
"""
